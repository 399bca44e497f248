"""The Kubeflow ``PyTorchJob`` (training operator v1) manifest of a :class:`TrainJobSpec`.

The job has one Master pod and ``num_workers - 1`` Worker pods (their template:
:mod:`videollm.launcher.pytorchjob_pod`); each runs torchrun through
:mod:`videollm.launcher.entry`. The training operator injects ``PET_NNODES``,
``PET_NPROC_PER_NODE`` (from ``spec.nprocPerNode``), ``PET_NODE_RANK``, ``PET_MASTER_ADDR`` and
``PET_MASTER_PORT`` into every pod, and torchrun reads each of its flags from the matching
``PET_*`` variable, so the command carries no rendezvous flags.

No job outlives its run for long: ``runPolicy.activeDeadlineSeconds`` makes the operator kill a
hung job whatever its watcher does, ``ttlSecondsAfterFinished`` deletes a finished one, and an
owner reference (the run's Argo Workflow, see :mod:`videollm.launcher.owner`) lets the garbage
collector delete it with the run.
"""

from __future__ import annotations

import re
from typing import Any

from kubeflow.training import models
from kubernetes import client as k8s

from videollm.errors import ConfigError
from videollm.launcher.base import TrainJobSpec, check_sizes
from videollm.launcher.pytorchjob_pod import pod_template

API_VERSION = "kubeflow.org/v1"
KIND = "PyTorchJob"
PLURAL = "pytorchjobs"
MANAGED_BY = {"app.kubernetes.io/managed-by": "videollm"}
#: Retries of a *retryable* failure (exit code 128-255) before the job fails.
BACKOFF_LIMIT = 3
#: Training operator v1 (pkg/apis/kubeflow.org/v1/common_types.go, RestartPolicyExitCode; the
#: check is pkg/util/train/train_util.go IsRetryableExitCode: ``exitCode >= 128``): a pod whose
#: ``pytorch`` container exits with 1-127 fails the job at once ("permanent error, do not
#: restart"); 128-255 deletes and recreates the pod, up to ``backoffLimit``
#: (pkg/controller.v1/common/pod.go, ReconcilePods). videollm.launcher.entry picks the code.
RESTART_POLICY = "ExitCode"
_INT32_MAX = 2**31 - 1

#: Labels that belong on the job and not on its pods: Kueue admits the PyTorchJob as one
#: workload; the queue label on its pods too would make Kueue's pod integration (where it is
#: enabled) gate each pod as a workload of its own.
JOB_ONLY_LABELS = frozenset({"kueue.x-k8s.io/queue-name"})
# The operator validates job names as DNS-1035 labels (services are named after them).
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def build_pytorchjob(
    spec: TrainJobSpec, owner: k8s.V1OwnerReference | None = None
) -> models.KubeflowOrgV1PyTorchJob:
    """Build the ``PyTorchJob`` object for ``spec``.

    Args:
        spec: The training run.
        owner: The object the job belongs to (garbage-collected with it), or ``None``.

    Returns:
        A ``kubeflow.org/v1`` ``PyTorchJob`` with a Master (1 replica) and, for more than one
        node, a Worker replica spec; ``cleanPodPolicy: None`` keeps finished pods (and their
        logs) until ``ttlSecondsAfterFinished`` removes the job.

    Raises:
        ConfigError: The name is not a DNS-1035 label, the image is missing, or a count, the
            deadline or the TTL is out of range.
    """
    _check_spec(spec)
    labels = {**spec.labels, **MANAGED_BY}
    pod_labels = {k: v for k, v in labels.items() if k not in JOB_ONLY_LABELS}
    replica_specs = {"Master": _replica_spec(spec, 1, pod_labels)}
    if spec.num_workers > 1:
        replica_specs["Worker"] = _replica_spec(spec, spec.num_workers - 1, pod_labels)
    return models.KubeflowOrgV1PyTorchJob(
        api_version=API_VERSION,
        kind=KIND,
        metadata=k8s.V1ObjectMeta(
            name=spec.name,
            namespace=spec.namespace,
            labels=labels,
            owner_references=[owner] if owner is not None else None,
        ),
        spec=models.KubeflowOrgV1PyTorchJobSpec(
            # The v1 CRD types nprocPerNode as a string (it also accepts "auto", "gpu", "cpu").
            nproc_per_node=str(spec.nproc),
            pytorch_replica_specs=replica_specs,
            run_policy=models.KubeflowOrgV1RunPolicy(
                clean_pod_policy="None",
                backoff_limit=BACKOFF_LIMIT,
                active_deadline_seconds=spec.active_deadline_s,
                ttl_seconds_after_finished=spec.ttl_after_finished_s,
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
    check_sizes(spec)
    ttl = spec.ttl_after_finished_s
    if ttl is not None and not 0 <= ttl <= _INT32_MAX:
        raise ConfigError(
            f"job {spec.name}: ttl_after_finished_s must be between 0 and {_INT32_MAX} seconds "
            f"(or None: kept), got {ttl}"
        )


def _replica_spec(
    spec: TrainJobSpec, replicas: int, labels: dict[str, str]
) -> models.KubeflowOrgV1ReplicaSpec:
    return models.KubeflowOrgV1ReplicaSpec(
        replicas=replicas,
        restart_policy=RESTART_POLICY,
        template=pod_template(spec, labels),
    )
