"""The pipeline's train task: run ``videollm train`` on N nodes × G GPUs and wait for it.

On a cluster it becomes a Kubeflow PyTorchJob; with no cluster (``kfp.local``, a laptop) the same
command runs under ``torchrun`` on this machine. Either way the checkpoint lands at
``checkpoint_uri`` and the run's metrics are read back from MLflow.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml

from videollm.errors import VideoLLMError
from videollm.launcher.base import Launcher, TrainJobSpec
from videollm.pipeline.tasks import TaskResult

logger = logging.getLogger(__name__)


@dataclass
class TrainTaskArgs:
    """The train task's settings (pipeline parameters).

    Attributes:
        records_uri: Records folder (``train.jsonl``, ``val.jsonl``).
        features_uri: Features folder or prefix (sharded or not).
        checkpoint_uri: Where the checkpoint goes.
        llm: Base LLM (HF id or path).
        recipe: Training preset or YAML path.
        overrides: Extra ``key=value`` training overrides.
        num_workers: Nodes.
        gpus_per_worker: GPUs per node (0: CPU).
        deepspeed: ``""``, ``zero2`` or ``zero3``.
        launcher: ``auto`` (PyTorchJob inside a cluster, else local), ``local`` or ``pytorchjob``.
        job_name: PyTorchJob name (made DNS-safe); by default ``videollm-<run>``, after the
            folder that holds the checkpoint (the pipeline run's work folder).
        image: Image of the training pods.
        namespace: Namespace of the job; defaults to the pod's own.
        service_account: Service account of the training pods.
        platform_secret: Secret with S3/MLflow credentials, as env in the pods.
        platform_config: ConfigMap with S3/MLflow endpoints, as env in the pods.
        node_selector: Node labels for the training pods.
        tolerations: Tolerations for the training pods.
        image_pull_secrets: Registry secrets.
        timeout_s: How long to wait for the job.
        delete_on_success: Delete the PyTorchJob when it succeeds.
    """

    records_uri: str
    features_uri: str
    checkpoint_uri: str
    llm: str
    recipe: str = "demo"
    overrides: list[str] = field(default_factory=list)
    num_workers: int = 1
    gpus_per_worker: int = 0
    deepspeed: str = ""
    launcher: str = "auto"
    job_name: str = ""
    image: str = ""
    namespace: str = ""
    service_account: str = ""
    platform_secret: str = ""
    platform_config: str = ""
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    image_pull_secrets: list[str] = field(default_factory=list)
    timeout_s: int = 24 * 3600
    delete_on_success: bool = True


def job_spec(args: TrainTaskArgs) -> TrainJobSpec:
    """The launcher-independent job: the ``videollm train`` command and where it runs."""
    cmd = [
        "train",
        "--config",
        args.recipe,
        "--records",
        args.records_uri,
        "--features",
        args.features_uri,
        "--out",
        args.checkpoint_uri,
        "--llm",
        args.llm,
    ]
    overrides = list(args.overrides)
    if args.deepspeed:
        overrides.append(f"train.deepspeed={args.deepspeed}")
    env = {k: os.environ[k] for k in ("MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID") if k in os.environ}
    return TrainJobSpec(
        name=dns_name(args.job_name or f"videollm-{run_name(args.checkpoint_uri)}"),
        args=cmd + overrides,
        image=args.image,
        num_workers=args.num_workers,
        gpus_per_worker=args.gpus_per_worker,
        namespace=args.namespace or current_namespace(),
        service_account=args.service_account or None,
        node_selector=args.node_selector,
        tolerations=args.tolerations,
        image_pull_secrets=args.image_pull_secrets,
        env=env,
        env_from_secrets=[args.platform_secret] if args.platform_secret else [],
        env_from_config_maps=[args.platform_config] if args.platform_config else [],
    )


def pick_launcher(args: TrainTaskArgs) -> Launcher:
    """``auto`` means a PyTorchJob when running inside a cluster, ``torchrun`` otherwise."""
    kind = args.launcher
    if kind == "auto":
        kind = "pytorchjob" if os.environ.get("KUBERNETES_SERVICE_HOST") else "local"
    if kind == "local":
        from videollm.launcher.local import TorchrunLauncher

        return TorchrunLauncher()
    if kind == "pytorchjob":
        from videollm.launcher.pytorchjob import PyTorchJobLauncher

        return PyTorchJobLauncher(
            timeout_s=args.timeout_s, delete_on_success=args.delete_on_success
        )
    raise VideoLLMError(f"launcher: {args.launcher!r} is not one of auto, local, pytorchjob")


def run_train_task(args: TrainTaskArgs, launcher: Launcher | None = None) -> tuple[TaskResult, str]:
    """Launch training, fail with the job's reason, and return metrics plus the job's YAML."""
    spec = job_spec(args)
    if args.num_workers < 1:
        raise VideoLLMError(f"num_workers: must be at least 1, got {args.num_workers}")
    result = (launcher or pick_launcher(args)).run(spec)
    job_yaml = (
        yaml.safe_dump(result.manifest, sort_keys=False)
        if result.manifest
        else "# trained locally with torchrun: no PyTorchJob\n"
    )
    if not result.succeeded:
        raise VideoLLMError(f"training job {spec.name} failed: {result.reason}")
    metrics = run_metrics(args.checkpoint_uri)
    manifest = {
        "llm": args.llm,
        "recipe": args.recipe,
        "num_workers": args.num_workers,
        "gpus_per_worker": args.gpus_per_worker,
    }
    return TaskResult(args.checkpoint_uri, metrics, manifest=manifest), job_yaml


def run_metrics(checkpoint_uri: str) -> dict[str, float]:
    """Final metrics of the MLflow run that wrote ``checkpoint_uri`` (empty if none found)."""
    from mlflow import MlflowClient

    from videollm.tracking import CHECKPOINT_TAG
    from videollm.tracking.store import experiment_name

    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name())
    if experiment is None:
        return {}
    uri = checkpoint_uri if "://" in checkpoint_uri else os.path.abspath(checkpoint_uri)
    runs = client.search_runs(
        [experiment.experiment_id],
        f"tags.`{CHECKPOINT_TAG}` = '{uri}'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return dict(runs[0].data.metrics) if runs else {}


def run_name(checkpoint_uri: str) -> str:
    """The name of the folder holding the checkpoint: ``<work_uri>/<run>/checkpoint`` → run."""
    return PurePosixPath(checkpoint_uri.rstrip("/")).parent.name or "train"


def dns_name(name: str) -> str:
    """A DNS-1035 label, as PyTorchJob names must be: lowercase alphanumerics and ``-``,
    starting with a letter, at most 63 characters."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not cleaned:
        raise VideoLLMError(f"job_name: {name!r} has no usable characters")
    if not cleaned[0].isalpha():
        cleaned = f"job-{cleaned}"
    return cleaned[:63].rstrip("-")


def current_namespace() -> str:
    """The pod's own namespace (from its service account), else ``default``."""
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "default"
