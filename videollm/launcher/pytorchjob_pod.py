"""The pod template of a PyTorchJob's replicas: one ``pytorch`` container, locked down.

Every pod runs ``python -m videollm.launcher.entry -m videollm.cli.main <args>`` (torchrun with
exit codes the ``ExitCode`` restart policy can act on, see :mod:`videollm.launcher.entry`) as
uid/gid 1000 with no service-account token, no privilege escalation, no capabilities and a
read-only root file system; what the processes write goes to emptyDirs (``/tmp``, the home
folder with its caches, ``/dev/shm``) or to the Hugging Face cache volume.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from videollm.cluster import GPU_RESOURCE, HF_HOME, HF_TOKEN_KEY
from videollm.errors import ConfigError
from videollm.launcher.base import TrainJobSpec

#: The operator finds the training container by this name (and injects the PET_* env into it).
CONTAINER_NAME = "pytorch"
#: The operator's default rendezvous port; declared explicitly so the manifest shows it.
MASTER_PORT_NAME = "pytorchjob-port"
MASTER_PORT = 23456
#: The command every replica runs before ``spec.args``. No rendezvous flags: torchrun takes
#: them from the operator's PET_* variables.
COMMAND = ["python", "-m", "videollm.launcher.entry", "-m", "videollm.cli.main"]
#: The user and group of our images (``images/base/Dockerfile``) and their home folder.
UID = GID = 1000
HOME = "/home/videollm"

_TOLERATION_KEYS = {
    "key": "key",
    "operator": "operator",
    "value": "value",
    "effect": "effect",
    "tolerationSeconds": "toleration_seconds",
    "toleration_seconds": "toleration_seconds",
}


def pod_template(spec: TrainJobSpec, labels: dict[str, str]) -> k8s.V1PodTemplateSpec:
    """The pod template every replica (Master and Worker) of ``spec`` uses.

    Raises:
        ConfigError: A toleration has keys Kubernetes does not know.
    """
    return k8s.V1PodTemplateSpec(
        metadata=k8s.V1ObjectMeta(
            labels=dict(labels), annotations=dict(spec.pod_annotations) or None
        ),
        spec=_pod_spec(spec),
    )


def _pod_spec(spec: TrainJobSpec) -> k8s.V1PodSpec:
    mounts, pod_volumes = volumes(spec)
    container = k8s.V1Container(
        name=CONTAINER_NAME,
        image=spec.image,
        command=[*COMMAND, *spec.args],
        env=env_vars(spec) or None,
        env_from=env_from(spec) or None,
        ports=[k8s.V1ContainerPort(name=MASTER_PORT_NAME, container_port=MASTER_PORT)],
        resources=resources(spec),
        volume_mounts=mounts,
        security_context=container_security_context(),
    )
    return k8s.V1PodSpec(
        containers=[container],
        volumes=pod_volumes,
        service_account_name=spec.service_account or None,
        # Training talks to S3 and MLflow, never to the Kubernetes API: no token to steal.
        automount_service_account_token=False,
        security_context=pod_security_context(),
        node_selector=dict(spec.node_selector) or None,
        tolerations=[toleration(spec.name, t) for t in spec.tolerations] or None,
        image_pull_secrets=[k8s.V1LocalObjectReference(name=n) for n in spec.image_pull_secrets]
        or None,
    )


def container_security_context() -> k8s.V1SecurityContext:
    """The training container's: no privileges, no capabilities, a read-only root."""
    return k8s.V1SecurityContext(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
    )


def pod_security_context() -> k8s.V1PodSecurityContext:
    """The training pod's: our images' non-root user and group, the default seccomp profile."""
    return k8s.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=UID,
        run_as_group=GID,
        # The HF cache volume becomes writable by the group; OnRootMismatch skips the
        # recursive chown of a full cache on every start.
        fs_group=GID,
        fs_group_change_policy="OnRootMismatch",
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


def volumes(spec: TrainJobSpec) -> tuple[list[k8s.V1VolumeMount], list[k8s.V1Volume]]:
    """Where the processes write, the root file system being read-only: (mounts, volumes)."""
    mounts = [
        # The container runtime's 64 MB /dev/shm is too small for NCCL and DataLoader workers.
        k8s.V1VolumeMount(name="dshm", mount_path="/dev/shm"),
        k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
        # Caches under ~: DeepSpeed's JIT-built ops (~/.cache), Triton's and CUDA's kernels.
        k8s.V1VolumeMount(name="home", mount_path=HOME),
    ]
    volumes = [
        k8s.V1Volume(
            name="dshm",
            empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory", size_limit=spec.shm_size),
        ),
        k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource()),
        k8s.V1Volume(name="home", empty_dir=k8s.V1EmptyDirVolumeSource()),
    ]
    if spec.hf_cache_pvc:
        mounts.append(k8s.V1VolumeMount(name="hf-cache", mount_path=HF_HOME))
        volumes.append(
            k8s.V1Volume(
                name="hf-cache",
                persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                    claim_name=spec.hf_cache_pvc
                ),
            )
        )
    return mounts, volumes


def env_vars(spec: TrainJobSpec) -> list[k8s.V1EnvVar]:
    """The plain variables, ``HF_HOME`` with a cache volume, and the optional ``HF_TOKEN``."""
    values = dict(spec.env)
    if spec.hf_cache_pvc:
        values["HF_HOME"] = HF_HOME
    env = [k8s.V1EnvVar(name=k, value=v) for k, v in values.items()]
    if spec.hf_token_secret:
        # Optional: public models load without a token, and a missing Secret must not keep
        # the pod from starting.
        env.append(
            k8s.V1EnvVar(
                name="HF_TOKEN",
                value_from=k8s.V1EnvVarSource(
                    secret_key_ref=k8s.V1SecretKeySelector(
                        name=spec.hf_token_secret, key=HF_TOKEN_KEY, optional=True
                    )
                ),
            )
        )
    return env


def env_from(spec: TrainJobSpec) -> list[k8s.V1EnvFromSource]:
    """Every key of the platform Secrets and ConfigMaps as variables."""
    sources = [
        k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=n)) for n in spec.env_from_secrets
    ]
    sources += [
        k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name=n))
        for n in spec.env_from_config_maps
    ]
    return sources


def resources(spec: TrainJobSpec) -> k8s.V1ResourceRequirements:
    """Requests and limits of one node (limits default to the requests; GPUs are limits)."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for name, request, limit in (
        ("cpu", spec.cpu, spec.cpu_limit),
        ("memory", spec.memory, spec.memory_limit),
    ):
        if request:
            requests[name] = request
        if limit or request:
            limits[name] = str(limit or request)
    if spec.gpus_per_worker > 0:
        # Extended resources are limits-only; Kubernetes copies them into requests.
        limits[GPU_RESOURCE] = str(spec.gpus_per_worker)
    return k8s.V1ResourceRequirements(requests=requests or None, limits=limits or None)


def toleration(job: str, given: dict[str, Any]) -> k8s.V1Toleration:
    """``given`` (Kubernetes or snake_case keys) as a toleration.

    Raises:
        ConfigError: It has keys Kubernetes does not know.
    """
    unknown = set(given) - set(_TOLERATION_KEYS)
    if unknown:
        raise ConfigError(
            f"job {job}: toleration {given} has unknown keys {sorted(unknown)}; "
            f"allowed: key, operator, value, effect, tolerationSeconds"
        )
    return k8s.V1Toleration(**{_TOLERATION_KEYS[k]: v for k, v in given.items()})
