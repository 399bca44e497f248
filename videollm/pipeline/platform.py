"""Names the pipelines share with the Helm chart: one place, no literals scattered around.

The chart (``charts/videollm``) creates ``<release>-platform`` (ConfigMap: endpoints) and
``<release>-credentials`` (Secret: keys) and a ``videollm-pipeline`` ServiceAccount; with the
release named ``videollm`` these are the defaults below. Each is also a pipeline parameter.
"""

from __future__ import annotations

from videollm.images import PIPELINE_IMAGE
from videollm.launcher.base import GPU_RESOURCE

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

#: Accelerator of the GPU tasks (extraction) and the node label/taint GPU nodes carry.
#: GPUs per extract task (a literal: kfp.local cannot resolve a parameter inside ParallelFor).
EXTRACT_GPUS = 1
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}

__all__ = [
    "CONFIG_KEYS",
    "EXTRACT_GPUS",
    "GPU_RESOURCE",
    "GPU_TOLERATION",
    "HF_CACHE_PVC",
    "HF_HOME",
    "HF_TOKEN_KEY",
    "HF_TOKEN_SECRET",
    "ISTIO_INJECT",
    "PIPELINE_IMAGE",
    "PLATFORM_CONFIG",
    "PLATFORM_SECRET",
    "SECRET_KEYS",
    "SERVICE_ACCOUNT",
    "TRAIN_SERVICE_ACCOUNT",
]
