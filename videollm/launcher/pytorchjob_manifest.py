"""The Kubeflow ``PyTorchJob`` (training operator v1) manifest of a :class:`TrainJobSpec`.

The job has one Master pod and ``num_workers - 1`` Worker pods; each runs
``torchrun -m videollm.cli.main <args>``. The training operator injects ``PET_NNODES``,
``PET_NPROC_PER_NODE`` (from ``spec.nprocPerNode``), ``PET_NODE_RANK``, ``PET_MASTER_ADDR`` and
``PET_MASTER_PORT`` into every pod, and ``torchrun`` reads each of its flags from the matching
``PET_*`` variable, so the command carries no rendezvous flags.
"""

from __future__ import annotations

import re
from typing import Any

from kubeflow.training import models
from kubernetes import client as k8s

from videollm.errors import ConfigError
from videollm.launcher.base import GPU_RESOURCE, TrainJobSpec

API_VERSION = "kubeflow.org/v1"
KIND = "PyTorchJob"
PLURAL = "pytorchjobs"
#: The operator finds the training container by this name (and injects the PET_* env into it).
CONTAINER_NAME = "pytorch"
#: The operator's default rendezvous port; declared explicitly so the manifest shows it.
MASTER_PORT_NAME = "pytorchjob-port"
MASTER_PORT = 23456
MANAGED_BY = {"app.kubernetes.io/managed-by": "videollm"}
BACKOFF_LIMIT = 3

# The operator validates job names as DNS-1035 labels (services are named after them).
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_TOLERATION_KEYS = {
    "key": "key",
    "operator": "operator",
    "value": "value",
    "effect": "effect",
    "tolerationSeconds": "toleration_seconds",
    "toleration_seconds": "toleration_seconds",
}


def build_pytorchjob(spec: TrainJobSpec) -> models.KubeflowOrgV1PyTorchJob:
    """Build the ``PyTorchJob`` object for ``spec``.

    Args:
        spec: The training run.

    Returns:
        A ``kubeflow.org/v1`` ``PyTorchJob`` with a Master (1 replica) and, for more than one
        node, a Worker replica spec; ``cleanPodPolicy: None`` keeps finished pods so their logs
        stay readable.

    Raises:
        ConfigError: The name is not a DNS-1035 label, the image is missing, or the node or GPU
            counts are out of range.
    """
    _check_spec(spec)
    labels = {**spec.labels, **MANAGED_BY}
    replica_specs = {"Master": _replica_spec(spec, 1, labels)}
    if spec.num_workers > 1:
        replica_specs["Worker"] = _replica_spec(spec, spec.num_workers - 1, labels)
    return models.KubeflowOrgV1PyTorchJob(
        api_version=API_VERSION,
        kind=KIND,
        metadata=k8s.V1ObjectMeta(name=spec.name, namespace=spec.namespace, labels=labels),
        spec=models.KubeflowOrgV1PyTorchJobSpec(
            # The v1 CRD types nprocPerNode as a string (it also accepts "auto", "gpu", "cpu").
            nproc_per_node=str(spec.nproc),
            pytorch_replica_specs=replica_specs,
            run_policy=models.KubeflowOrgV1RunPolicy(
                clean_pod_policy="None", backoff_limit=BACKOFF_LIMIT
            ),
        ),
    )


def manifest_dict(job: models.KubeflowOrgV1PyTorchJob) -> dict[str, Any]:
    """The job as the JSON-ready dict the API server receives (camelCase keys, no nulls)."""
    return k8s.ApiClient().sanitize_for_serialization(job)


def _check_spec(spec: TrainJobSpec) -> None:
    if not _DNS_1035.match(spec.name) or len(spec.name) > 63:
        raise ConfigError(
            f"job name {spec.name!r}: a PyTorchJob name must be a DNS-1035 label (lowercase "
            "letters, digits and '-', starting with a letter, at most 63 characters)"
        )
    if not spec.image:
        raise ConfigError(f"job {spec.name}: image is required to run on Kubernetes")
    if spec.num_workers < 1:
        raise ConfigError(
            f"job {spec.name}: num_workers must be at least 1, got {spec.num_workers}"
        )
    if spec.gpus_per_worker < 0:
        raise ConfigError(
            f"job {spec.name}: gpus_per_worker must be 0 or more, got {spec.gpus_per_worker}"
        )


def _replica_spec(
    spec: TrainJobSpec, replicas: int, labels: dict[str, str]
) -> models.KubeflowOrgV1ReplicaSpec:
    return models.KubeflowOrgV1ReplicaSpec(
        replicas=replicas,
        # OnFailure restarts a crashed container in place; backoffLimit bounds the restarts.
        restart_policy="OnFailure",
        template=k8s.V1PodTemplateSpec(
            metadata=k8s.V1ObjectMeta(labels=dict(labels)),
            spec=_pod_spec(spec),
        ),
    )


def _pod_spec(spec: TrainJobSpec) -> k8s.V1PodSpec:
    container = k8s.V1Container(
        name=CONTAINER_NAME,
        image=spec.image,
        # No rendezvous flags: torchrun takes them from the operator's PET_* variables.
        command=["torchrun", "-m", "videollm.cli.main", *spec.args],
        env=[k8s.V1EnvVar(name=k, value=v) for k, v in spec.env.items()] or None,
        env_from=_env_from(spec) or None,
        ports=[k8s.V1ContainerPort(name=MASTER_PORT_NAME, container_port=MASTER_PORT)],
        resources=_resources(spec),
        volume_mounts=[k8s.V1VolumeMount(name="dshm", mount_path="/dev/shm")],
    )
    return k8s.V1PodSpec(
        containers=[container],
        # The container runtime's 64 MB /dev/shm is too small for NCCL and DataLoader workers.
        volumes=[
            k8s.V1Volume(
                name="dshm",
                empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory", size_limit=spec.shm_size),
            )
        ],
        service_account_name=spec.service_account or None,
        node_selector=dict(spec.node_selector) or None,
        tolerations=[_toleration(spec.name, t) for t in spec.tolerations] or None,
        image_pull_secrets=[k8s.V1LocalObjectReference(name=n) for n in spec.image_pull_secrets]
        or None,
    )


def _env_from(spec: TrainJobSpec) -> list[k8s.V1EnvFromSource]:
    sources = [
        k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=n)) for n in spec.env_from_secrets
    ]
    sources += [
        k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name=n))
        for n in spec.env_from_config_maps
    ]
    return sources


def _resources(spec: TrainJobSpec) -> k8s.V1ResourceRequirements:
    requests: dict[str, str] = {}
    if spec.cpu:
        requests["cpu"] = spec.cpu
    if spec.memory:
        requests["memory"] = spec.memory
    limits = dict(requests)
    if spec.gpus_per_worker > 0:
        # Extended resources are limits-only; Kubernetes copies them into requests.
        limits[GPU_RESOURCE] = str(spec.gpus_per_worker)
    return k8s.V1ResourceRequirements(requests=requests or None, limits=limits or None)


def _toleration(job: str, toleration: dict[str, Any]) -> k8s.V1Toleration:
    unknown = set(toleration) - set(_TOLERATION_KEYS)
    if unknown:
        raise ConfigError(
            f"job {job}: toleration {toleration} has unknown keys {sorted(unknown)}; "
            f"allowed: key, operator, value, effect, tolerationSeconds"
        )
    return k8s.V1Toleration(**{_TOLERATION_KEYS[k]: v for k, v in toleration.items()})
