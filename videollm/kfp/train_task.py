"""The pipeline's train task: run ``videollm train`` on N nodes × G GPUs and wait for it.

On a cluster it becomes a Kubeflow PyTorchJob; with no cluster (``kfp.local``, a laptop) the same
command runs under ``torchrun`` on this machine. Either way the checkpoint lands at
``checkpoint_uri`` and the run's metrics are read back from MLflow.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import PurePosixPath
from typing import Any, NamedTuple

import yaml

from videollm.cluster import (
    ISTIO_INJECT,
    KUEUE_QUEUE_LABEL,
    RUN_LABEL,
    current_namespace,
)
from videollm.errors import ConfigError, StorageError, VideoLLMError
from videollm.kfp.sizing import TRAIN_TIMEOUT_HOURS, TRAIN_TTL_HOURS
from videollm.kfp.task_io import TaskResult
from videollm.launcher.base import Launcher, TrainJobSpec
from videollm.launcher.registry import LaunchSettings, make_launcher
from videollm.launcher.trainjob_manifest import DEFAULT_RUNTIME
from videollm.storage import join
from videollm.tracking.lookup import checkpoint_metrics

logger = logging.getLogger(__name__)

#: Folder beside the checkpoint (``<work_uri>/<run>/train-logs``) where the master's log goes.
LOG_FOLDER = "train-logs"
# Kubernetes label values: at most 63 characters, alphanumerics, '-', '_', '.' inside.
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


@dataclass
class TrainTaskArgs:
    """The train task's settings: the one declaration of the train component's parameters and
    of the pipeline's train parameters (:mod:`videollm.kfp.train_params` derives and checks
    them), so what is written here is what their documentation says.

    Attributes:
        records_uri: Records folder or prefix (``train.jsonl``, ``val.jsonl``; from ``convert``).
        features_uri: Features folder or prefix (sharded or not).
        checkpoint_uri: Where the checkpoint goes.
        llm: Base LLM (HF id, path or s3:// mirror).
        recipe: Training preset (``demo``, ``videochatgpt_7b``, ``breakfast``) or YAML path.
        overrides: Extra ``key=value`` training overrides.
        num_workers: Training nodes (PyTorchJob master + workers).
        gpus_per_worker: GPUs per training node (0: CPU).
        deepspeed: ``""``, ``zero2`` or ``zero3``.
        launcher: Where training runs: ``auto`` (``pytorchjob`` inside a cluster, else
            ``local``), ``local`` (torchrun on this machine), ``pytorchjob`` (a Kubeflow
            PyTorchJob, training operator v1) or ``trainjob`` (a Kubeflow Trainer v2 TrainJob).
        job_name: PyTorchJob name (made DNS-safe); by default ``videollm-<run>``, after the
            folder that holds the checkpoint (the pipeline run's work folder).
        image: Image of the training pods.
        namespace: Namespace of the job; defaults to the pod's own.
        service_account: Service account of the training pods (not the one of the train task,
            which creates the job and runs as KFP's own account).
        platform_secret: Secret with S3/MLflow credentials, as env in the training pods.
        platform_config: ConfigMap with S3/MLflow endpoints, as env in the training pods.
        node_selector: Node labels for the training pods.
        tolerations: Tolerations for the training pods.
        image_pull_secrets: Registry secrets for the training pods.
        cpu: CPU request and limit of each training pod (``""``: unset).
        memory: Memory request and limit of each training pod (``""``: unset).
        timeout_hours: The job's deadline (``runPolicy.activeDeadlineSeconds``); the train task
            waits 10 minutes longer before it deletes the job itself.
        ttl_hours: How long the operator keeps a finished job (``ttlSecondsAfterFinished``).
        delete_on_success: Delete the PyTorchJob when it succeeds.
        istio_sidecar: Let Istio inject its sidecar into the training pods (off by default:
            a sidecar keeps a finished pod running, so the job never ends).
        kueue_queue: Kueue ``LocalQueue`` of the job (``""``: none).
        hf_cache_pvc: PersistentVolumeClaim mounted as the Hugging Face cache of the training
            pods (``""``: none).
        hf_token_secret: Secret with the Hub token as ``HF_TOKEN`` for the training pods
            (``""``: none).
        trainjob_runtime: The ``TrainingRuntime`` (looked up first, in the job's namespace) or
            ``ClusterTrainingRuntime`` a TrainJob runs on (``launcher=trainjob`` only).
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
    cpu: str = ""
    memory: str = ""
    timeout_hours: float = TRAIN_TIMEOUT_HOURS
    ttl_hours: float = TRAIN_TTL_HOURS
    delete_on_success: bool = True
    istio_sidecar: bool = False
    kueue_queue: str = ""
    hf_cache_pvc: str = ""
    hf_token_secret: str = ""
    trainjob_runtime: str = DEFAULT_RUNTIME

    @classmethod
    def from_component(cls, params: Mapping[str, Any], **derived: Any) -> TrainTaskArgs:
        """Build from the train component's parameters and the fields it derives.

        Args:
            params: The component's parameters by name (its ``locals()``); extra names are
                ignored.
            derived: Values of the fields in :data:`COMPONENT_DERIVED` that the component
                computes; the others keep their defaults.

        Raises:
            KeyError: ``params`` lacks a component parameter.
        """
        values = {
            f.name: params[component_name(f.name)]
            for f in fields(cls)
            if f.name not in COMPONENT_DERIVED
        }
        return cls(**values, **derived)


#: Train component parameters named other than their field (names kept for compatibility).
COMPONENT_NAMES: dict[str, str] = {"overrides": "train_overrides"}
#: Fields the train component does not take as parameters, and what sets them instead.
COMPONENT_DERIVED: dict[str, str] = {
    "features_uri": "the one prefix of the collected ``features_uris``",
    "checkpoint_uri": "``<work_uri>/<run_id>/checkpoint``",
    "job_name": "its default: named after the run",
    "namespace": "its default: the train task's own namespace",
}


def component_name(field_name: str) -> str:
    """The train component's parameter for the :class:`TrainTaskArgs` field ``field_name``."""
    return COMPONENT_NAMES.get(field_name, field_name)


class TrainOutput(NamedTuple):
    """What a successful train task returns.

    Attributes:
        result: Checkpoint URI, the run's final metrics and the manifest.
        job_yaml: The submitted PyTorchJob as YAML (a comment for a local run).
        log: The tail of the master's log (or of torchrun's output).
    """

    result: TaskResult
    job_yaml: str
    log: str


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
    run = run_name(args.checkpoint_uri)
    # The run label lets a retried task find this run's job; the name alone is not enough
    # (a user-chosen job_name may be reused across runs).
    labels = {RUN_LABEL: label_value(run)}
    if args.kueue_queue:
        labels[KUEUE_QUEUE_LABEL] = checked_label("kueue_queue", args.kueue_queue)
    return TrainJobSpec(
        name=dns_name(args.job_name or f"videollm-{run}"),
        args=cmd + overrides,
        image=args.image,
        num_workers=args.num_workers,
        gpus_per_worker=args.gpus_per_worker,
        cpu=args.cpu or None,
        memory=args.memory or None,
        namespace=args.namespace or current_namespace(),
        service_account=args.service_account or None,
        node_selector=args.node_selector,
        tolerations=args.tolerations,
        image_pull_secrets=args.image_pull_secrets,
        env=env,
        env_from_secrets=[args.platform_secret] if args.platform_secret else [],
        env_from_config_maps=[args.platform_config] if args.platform_config else [],
        labels=labels,
        pod_annotations={} if args.istio_sidecar else {ISTIO_INJECT: "false"},
        active_deadline_s=hours_to_s("train_timeout_hours", args.timeout_hours, minimum=1),
        ttl_after_finished_s=hours_to_s("train_ttl_hours", args.ttl_hours, minimum=0),
        hf_cache_pvc=args.hf_cache_pvc,
        hf_token_secret=args.hf_token_secret,
        runtime=args.trainjob_runtime,
    )


def hours_to_s(name: str, hours: float, minimum: int) -> int:
    """Whole seconds of ``hours``, refusing fewer than ``minimum`` (or not a number)."""
    try:
        seconds = round(float(hours) * 3600)
    except (TypeError, ValueError, OverflowError):  # nan and inf too
        raise ConfigError(f"{name}: expected a number of hours, got {hours!r}") from None
    if seconds < minimum:
        raise ConfigError(f"{name}: must be at least {minimum} s, got {hours!r} h")
    return seconds


def label_value(text: str) -> str:
    """``text`` as a valid Kubernetes label value (other characters become ``-``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def checked_label(name: str, value: str) -> str:
    """``value`` if it is a valid label value (a queue name must match exactly, so it is not
    cleaned up), else a :class:`ConfigError` naming ``name``."""
    if not _LABEL_VALUE.match(value):
        raise ConfigError(
            f"{name}: {value!r} is not a valid Kubernetes label value (at most 63 letters, "
            "digits, '-', '_' or '.', starting and ending with a letter or digit)"
        )
    return value


def run_train_task(args: TrainTaskArgs, launcher: Launcher | None = None) -> TrainOutput:
    """Launch training and wait for it; keep the master's log beside the checkpoint.

    The log goes to ``<work_uri>/<run>/train-logs/<job>-<UTC time>.log`` (the folder holding
    the checkpoint folder) whether training succeeds or not: KFP uploads no output artifact
    of a failed task, and the job's pods go away with its TTL.

    Raises:
        VideoLLMError: training failed; the message gives the job's reason and the log's URI.
        ConfigError: a setting is out of range, or the launcher is unknown.
    """
    if args.num_workers < 1:
        raise VideoLLMError(f"num_workers: must be at least 1, got {args.num_workers}")
    spec = job_spec(args)
    if launcher is None:
        deadline_s = hours_to_s("train_timeout_hours", args.timeout_hours, minimum=1)
        launcher = make_launcher(args.launcher, LaunchSettings(deadline_s, args.delete_on_success))
    result = launcher.run(spec)
    job_yaml = (
        yaml.safe_dump(result.manifest, sort_keys=False)
        if result.manifest
        else "# trained locally with torchrun: no PyTorchJob\n"
    )
    saved = save_log(args.checkpoint_uri, spec.name, result.logs)
    if not result.succeeded:
        where = f"; the master's log is at {saved}" if saved else "; no log of it was kept"
        raise VideoLLMError(f"training job {spec.name} failed: {result.reason}{where}")
    metrics = checkpoint_metrics(args.checkpoint_uri)
    manifest = {
        "llm": args.llm,
        "recipe": args.recipe,
        "num_workers": args.num_workers,
        "gpus_per_worker": args.gpus_per_worker,
        "log": saved,
    }
    return TrainOutput(
        TaskResult(args.checkpoint_uri, metrics, manifest=manifest), job_yaml, result.logs
    )


def save_log(checkpoint_uri: str, job: str, text: str) -> str:
    """Write the master's log to the run's ``train-logs`` folder; return its URI.

    Returns ``""`` (with a warning) when there is no log or it cannot be written: a lost log
    must not hide how training ended.
    """
    if not text:
        logger.warning("no log was read from job %s's master; none is kept", job)
        return ""
    from videollm.storage.sync import write_bytes

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    uri = join(work_of(checkpoint_uri), LOG_FOLDER, f"{job}-{stamp}.log")
    try:
        write_bytes(uri, text.encode())
    except (StorageError, OSError) as err:
        logger.warning("could not keep the master's log at %s: %s", uri, err)
        return ""
    logger.info("kept the master's log at %s", uri)
    return uri


def work_of(checkpoint_uri: str) -> str:
    """The run's folder: the one holding ``<work_uri>/<run>/checkpoint``."""
    text = checkpoint_uri.rstrip("/")
    return text.rsplit("/", 1)[0] if "/" in text else "."


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
