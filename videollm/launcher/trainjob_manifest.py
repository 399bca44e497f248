"""The Kubeflow Trainer v2 ``TrainJob`` (``trainer.kubeflow.org/v1alpha1``) of a run.

A TrainJob names a runtime (``spec.runtimeRef``: a ``TrainingRuntime`` in its namespace or a
``ClusterTrainingRuntime``) that holds the JobSet template, and sets only what differs per run:

- ``spec.trainer``: the image, ``command``/``args``, ``numNodes``, ``numProcPerNode``,
  ``resourcesPerNode`` and ``env`` of the training container;
- ``spec.activeDeadlineSeconds``: Trainer fails the job with reason ``DeadlineExceeded``;
- ``spec.runtimePatches``: the pod settings a TrainJob may patch into the runtime's ``node``
  replicated job: pod labels and annotations (the Istio opt-out), service account, node
  selector, tolerations, image pull secrets, the pod and container security contexts, and the
  volumes (``/dev/shm``, ``/tmp``, the home folder, the Hugging Face cache) with their mounts.

The torch runtimes (the chart's ``videollm-torch``, the stock ``torch-distributed``) run every
node's container with ``PET_NNODES``, ``PET_NPROC_PER_NODE``, ``PET_NODE_RANK``,
``PET_MASTER_ADDR`` and ``PET_MASTER_PORT`` set, which torchrun reads, so the command is the
PyTorchJob's: ``python -m videollm.launcher.entry -m videollm.cli.main <args>`` (torchrun with
exit codes 78: permanent, 200: retryable). A TrainJob has no ``envFrom``: the platform
ConfigMap's and Secret's keys (:data:`~videollm.cluster.CONFIG_KEYS`,
:data:`~videollm.cluster.SECRET_KEYS`) become one ``valueFrom`` variable each, optional like
``envFrom`` is for a missing key. What a TrainJob cannot set comes from its runtime: the
finished-job TTL, restart/backoff policy, ``automountServiceAccountToken``.
"""

from __future__ import annotations

import re
from typing import Any

from kubernetes import client as k8s

from videollm.cluster import CONFIG_KEYS, SECRET_KEYS
from videollm.errors import ConfigError
from videollm.launcher.base import TrainJobSpec, check_sizes
from videollm.launcher.pytorchjob_manifest import JOB_ONLY_LABELS, MANAGED_BY
from videollm.launcher.pytorchjob_pod import (
    COMMAND,
    container_security_context,
    env_vars,
    pod_security_context,
    resources,
    toleration,
    volumes,
)

API_GROUP = "trainer.kubeflow.org"
API_VERSION = f"{API_GROUP}/v1alpha1"
KIND = "TrainJob"
PLURAL = "trainjobs"
CLUSTER_RUNTIME = "ClusterTrainingRuntime"
NAMESPACED_RUNTIME = "TrainingRuntime"
DEFAULT_RUNTIME = "videollm-torch"
#: The replicated job of the training nodes and its container, in every torch runtime.
NODE_JOB = "node"
NODE_CONTAINER = "node"
#: Who owns our entry of ``spec.runtimePatches`` (Kueue adds its own next to it).
PATCH_MANAGER = "videollm.io/launcher"
# The TrainJob CRD's own rule on metadata.name.
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def build_trainjob(
    spec: TrainJobSpec,
    runtime_kind: str = CLUSTER_RUNTIME,
    owner: k8s.V1OwnerReference | None = None,
) -> dict[str, Any]:
    """Build the ``TrainJob`` for ``spec`` as the JSON-ready dict the API server receives.

    Args:
        spec: The training run; ``spec.runtime`` names the runtime.
        runtime_kind: ``ClusterTrainingRuntime`` or ``TrainingRuntime`` (in the job's namespace).
        owner: The object the job belongs to (garbage-collected with it), or ``None``.

    Raises:
        ConfigError: The name is not a DNS-1035 label, the image or runtime is missing, or a
            count or the deadline is out of range.
    """
    _check_spec(spec, runtime_kind)
    labels = {**spec.labels, **MANAGED_BY}
    # Kueue admits the TrainJob as one workload: its queue label stays off the pods.
    pod_labels = {k: v for k, v in labels.items() if k not in JOB_ONLY_LABELS}
    trainer: dict[str, Any] = {
        "image": spec.image,
        "command": list(COMMAND),
        "args": list(spec.args),
        "numNodes": spec.num_workers,
        "numProcPerNode": spec.nproc,
        "resourcesPerNode": resources(spec),
        "env": [*env_vars(spec), *_keyed_env(spec)] or None,
    }
    job: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": k8s.V1ObjectMeta(
            name=spec.name,
            namespace=spec.namespace,
            labels=labels,
            owner_references=[owner] if owner is not None else None,
        ),
        "spec": {
            "runtimeRef": {"apiGroup": API_GROUP, "kind": runtime_kind, "name": spec.runtime},
            "trainer": trainer,
            "activeDeadlineSeconds": spec.active_deadline_s,
            "runtimePatches": [
                {
                    "manager": PATCH_MANAGER,
                    "trainingRuntimeSpec": {
                        "template": {"spec": {"replicatedJobs": [_node_patch(spec, pod_labels)]}}
                    },
                }
            ],
        },
    }
    return _without_nulls(k8s.ApiClient().sanitize_for_serialization(job))


def _without_nulls(value: Any) -> Any:
    """``value`` without the ``None`` entries of its dicts (unset, as in the Kubernetes models)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _node_patch(spec: TrainJobSpec, pod_labels: dict[str, str]) -> dict[str, Any]:
    mounts, pod_volumes = volumes(spec)
    pod_spec = {
        "serviceAccountName": spec.service_account,
        "nodeSelector": dict(spec.node_selector) or None,
        "tolerations": [toleration(spec.name, t) for t in spec.tolerations] or None,
        "imagePullSecrets": [{"name": n} for n in spec.image_pull_secrets] or None,
        "securityContext": pod_security_context(),
        "volumes": pod_volumes,
        "containers": [
            {
                "name": NODE_CONTAINER,
                "securityContext": container_security_context(),
                "volumeMounts": mounts,
            }
        ],
    }
    pod_meta = {"labels": pod_labels, "annotations": dict(spec.pod_annotations) or None}
    return {
        "name": NODE_JOB,
        "template": {"spec": {"template": {"metadata": pod_meta, "spec": pod_spec}}},
    }


def _keyed_env(spec: TrainJobSpec) -> list[k8s.V1EnvVar]:
    """The platform Secrets' and ConfigMaps' known keys, one variable each (no ``envFrom``)."""
    env = [
        k8s.V1EnvVar(
            name=key,
            value_from=k8s.V1EnvVarSource(
                secret_key_ref=k8s.V1SecretKeySelector(name=name, key=key, optional=True)
            ),
        )
        for name in spec.env_from_secrets
        for key in SECRET_KEYS
    ]
    env += [
        k8s.V1EnvVar(
            name=key,
            value_from=k8s.V1EnvVarSource(
                config_map_key_ref=k8s.V1ConfigMapKeySelector(name=name, key=key, optional=True)
            ),
        )
        for name in spec.env_from_config_maps
        for key in CONFIG_KEYS
    ]
    return env


def _check_spec(spec: TrainJobSpec, runtime_kind: str) -> None:
    if not _NAME.match(spec.name) or len(spec.name) > 63:
        raise ConfigError(
            f"job name {spec.name!r}: a TrainJob name must be a DNS-1035 label (lowercase "
            "letters, digits and '-', starting with a letter, at most 63 characters)"
        )
    if not spec.image:
        raise ConfigError(f"job {spec.name}: image is required to run on Kubernetes")
    if not spec.runtime:
        raise ConfigError(
            f"job {spec.name}: trainjob_runtime is empty; name a ClusterTrainingRuntime or "
            f"TrainingRuntime (default {DEFAULT_RUNTIME!r})"
        )
    if runtime_kind not in (CLUSTER_RUNTIME, NAMESPACED_RUNTIME):
        raise ConfigError(
            f"job {spec.name}: runtime kind {runtime_kind!r}: use {CLUSTER_RUNTIME} or "
            f"{NAMESPACED_RUNTIME}"
        )
    check_sizes(spec)
