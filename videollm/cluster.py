"""Names the pipelines share with the Helm chart: one place, no literals scattered around.

The chart (``charts/videollm``) creates ``<release>-platform`` (ConfigMap: endpoints) and
``<release>-credentials`` (Secret: keys) and a ``videollm-pipeline`` ServiceAccount; with the
release named ``videollm`` these are the defaults below. Each is also a pipeline parameter.
"""

from __future__ import annotations

from videollm.images import PIPELINE_IMAGE

#: The Kubernetes resource name of an NVIDIA GPU (training pods, extract tasks, the chart).
GPU_RESOURCE = "nvidia.com/gpu"
#: Label that names the run a job belongs to (``TrainJobSpec.labels``; the pipeline sets it to
#: the KFP run id). A retried attempt re-attaches only to a job that carries its own run's value.
RUN_LABEL = "videollm.io/run"
PLATFORM_CONFIG = "videollm-platform"
PLATFORM_SECRET = "videollm-credentials"
SERVICE_ACCOUNT = "videollm-pipeline"
#: The training pods' own ServiceAccount: no API token, no permissions (only the watcher, the
#: train task running as SERVICE_ACCOUNT, creates jobs).
TRAIN_SERVICE_ACCOUNT = "videollm-train"
#: PersistentVolumeClaim of the Hugging Face cache shared by train, evaluate and inference pods,
#: mounted at HF_HOME, and the optional Secret whose HF_TOKEN key is the Hub token.
HF_CACHE_PVC = "videollm-hf-cache"
HF_HOME = "/var/cache/huggingface"
HF_TOKEN_SECRET = "videollm-hf-token"
HF_TOKEN_KEY = "HF_TOKEN"
#: Pod annotation from which the pipeline tasks read HF_HOME (downward API: cluster pods only).
HF_HOME_ANNOTATION = "videollm.io/hf-home"
#: Optional Secret whose OPENAI_API_KEY key is the benchmark judge's API key (the judge's
#: default ``judge.api_key_env``); the ``benchmark`` pipeline's scoring tasks read it.
JUDGE_SECRET = "videollm-judge"
JUDGE_KEY = "OPENAI_API_KEY"
#: Annotation that keeps Istio's sidecar out of batch pods (it would keep them running forever).
ISTIO_INJECT = "sidecar.istio.io/inject"

#: ConfigMap keys every task reads as environment variables (the region only when the chart
#: sets ``platform.region``, for an external S3 outside the default region).
CONFIG_KEYS = (
    "VIDEOLLM_S3_ENDPOINT",
    "MLFLOW_S3_ENDPOINT_URL",
    "VIDEOLLM_S3_SECURE",
    "MLFLOW_TRACKING_URI",
    "VIDEOLLM_BUCKET",
    "AWS_DEFAULT_REGION",
)
#: Secret keys every task reads as environment variables.
SECRET_KEYS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)

#: GPUs per extract task: the 0.3B-parameter encoder needs no more.
EXTRACT_GPUS = 1
#: The taint GPU nodes carry; GPU tasks (extract, evaluate) tolerate it.
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}

#: Kueue's queue label, on the PyTorchJob and the extract pods when ``kueue_queue`` is set.
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"

#: The train task's KFP retry policy (literals: KFP takes no parameters there). Argo counts
#: the retry window from the first attempt's start and also ends a retried pod at its close,
#: so it must outlast every attempt: 14 days is 3 attempts of the default 72 h timeout and more.
TRAIN_RETRIES = 2
TRAIN_RETRY_BACKOFF = "120s"
TRAIN_RETRY_FACTOR = 2.0
TRAIN_RETRY_WINDOW = "1209600s"

#: Where Kubernetes mounts a pod's service account (its namespace file is read here).
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def current_namespace() -> str:
    """The pod's own namespace (from its service account), else ``default``."""
    try:
        with open(f"{SERVICE_ACCOUNT_DIR}/namespace") as f:
            return f.read().strip()
    except OSError:
        return "default"


__all__ = [
    "CONFIG_KEYS",
    "EXTRACT_GPUS",
    "GPU_RESOURCE",
    "GPU_TOLERATION",
    "HF_CACHE_PVC",
    "HF_HOME",
    "HF_HOME_ANNOTATION",
    "HF_TOKEN_KEY",
    "HF_TOKEN_SECRET",
    "ISTIO_INJECT",
    "JUDGE_KEY",
    "JUDGE_SECRET",
    "KUEUE_QUEUE_LABEL",
    "PIPELINE_IMAGE",
    "PLATFORM_CONFIG",
    "PLATFORM_SECRET",
    "RUN_LABEL",
    "SECRET_KEYS",
    "SERVICE_ACCOUNT",
    "TRAIN_RETRIES",
    "TRAIN_RETRY_BACKOFF",
    "TRAIN_RETRY_FACTOR",
    "TRAIN_RETRY_WINDOW",
    "TRAIN_SERVICE_ACCOUNT",
    "current_namespace",
]
