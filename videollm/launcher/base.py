"""What every training launcher takes and returns, so a new one (e.g. a Kubeflow Trainer v2
``TrainJob`` launcher) is one more class with a ``run`` method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from videollm.errors import ConfigError


@dataclass
class TrainJobSpec:
    """A distributed ``videollm`` training run, independent of where it runs.

    Attributes:
        name: Job name (a DNS-1123 label: lowercase letters, digits and ``-``).
        args: The ``videollm`` command line after the program name, e.g.
            ``["train", "--config", "demo", "--out", "s3://..."]``; every node runs it under
            ``torchrun``.
        image: Container image of the pods (cluster launchers only).
        num_workers: Nodes (pods): one master plus ``num_workers - 1`` workers.
        gpus_per_worker: GPUs per node (``nvidia.com/gpu``); 0 trains on CPU with gloo.
        procs_per_worker: Processes per node; defaults to the GPU count, or 1 on CPU.
        cpu: CPU request per node, e.g. ``"8"``; ``None`` leaves it unset.
        memory: Memory request per node, e.g. ``"64Gi"``.
        cpu_limit: CPU limit per node; ``None``: the same as ``cpu``.
        memory_limit: Memory limit per node; ``None``: the same as ``memory``.
        shm_size: Size of the ``/dev/shm`` emptyDir (NCCL and data loaders need more than the
            container default of 64 MB).
        namespace: Kubernetes namespace.
        service_account: Service account of the pods.
        node_selector: Node labels the pods must match.
        tolerations: Kubernetes tolerations as dicts (``key``, ``operator``, ``effect`` ...).
        image_pull_secrets: Names of registry secrets.
        env: Plain environment variables.
        env_from_secrets: Secrets whose keys become environment variables (MinIO, MLflow).
        env_from_config_maps: ConfigMaps whose keys become environment variables.
        labels: Extra labels on the job (e.g. ``kueue.x-k8s.io/queue-name``, the run's id).
        pod_annotations: Annotations on every pod, e.g. ``sidecar.istio.io/inject: "false"``
            (batch pods must not get an Istio sidecar: it keeps them running after training).
        active_deadline_s: ``runPolicy.activeDeadlineSeconds``: the operator kills the job
            after this long, whatever its watcher does; ``None``: no deadline.
        ttl_after_finished_s: ``runPolicy.ttlSecondsAfterFinished``: the operator deletes a
            finished job (and its pods) after this long; ``None``: kept.
        hf_cache_pvc: PersistentVolumeClaim mounted as the Hugging Face cache (``HF_HOME``);
            empty: none.
        hf_token_secret: Secret whose ``HF_TOKEN`` key becomes ``HF_TOKEN`` (optional);
            empty: none.
        runtime: The Kubeflow Trainer v2 ``TrainingRuntime`` or ``ClusterTrainingRuntime`` a
            ``TrainJob`` runs on (``trainjob`` launcher only).
    """

    name: str
    args: list[str]
    image: str = ""
    num_workers: int = 1
    gpus_per_worker: int = 0
    procs_per_worker: int | None = None
    cpu: str | None = None
    memory: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None
    shm_size: str = "16Gi"
    namespace: str = "default"
    service_account: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    image_pull_secrets: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    env_from_secrets: list[str] = field(default_factory=list)
    env_from_config_maps: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    pod_annotations: dict[str, str] = field(default_factory=dict)
    active_deadline_s: int | None = None
    ttl_after_finished_s: int | None = None
    hf_cache_pvc: str = ""
    hf_token_secret: str = ""
    runtime: str = "videollm-torch"

    @property
    def nproc(self) -> int:
        """Processes per node."""
        return self.procs_per_worker or max(1, self.gpus_per_worker)


@dataclass
class LaunchResult:
    """How a launched training run ended.

    Attributes:
        succeeded: Whether it finished successfully.
        reason: Why it failed (or ``""``).
        manifest: The submitted job object (cluster launchers), for the pipeline's artifact.
        logs: The master's log (cluster) or the process output (local), possibly truncated.
    """

    succeeded: bool
    reason: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)
    logs: str = ""


class Launcher(Protocol):
    """Runs a :class:`TrainJobSpec` to completion."""

    def run(self, spec: TrainJobSpec) -> LaunchResult:
        """Start the job, wait for it to end, and report how it ended."""
        ...


def check_sizes(spec: TrainJobSpec) -> None:
    """Refuse node, GPU and deadline counts no cluster job can have.

    Raises:
        ConfigError: naming the job and the setting.
    """
    if spec.num_workers < 1:
        raise ConfigError(
            f"job {spec.name}: num_workers must be at least 1, got {spec.num_workers}"
        )
    if spec.gpus_per_worker < 0:
        raise ConfigError(
            f"job {spec.name}: gpus_per_worker must be 0 or more, got {spec.gpus_per_worker}"
        )
    if spec.active_deadline_s is not None and spec.active_deadline_s < 1:
        raise ConfigError(
            f"job {spec.name}: active_deadline_s must be at least 1 second (or None: no "
            f"deadline), got {spec.active_deadline_s}"
        )
