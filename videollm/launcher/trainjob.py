"""Run a :class:`TrainJobSpec` as a Kubeflow Trainer v2 ``TrainJob`` and wait for it.

The manifest comes from :mod:`videollm.launcher.trainjob_manifest`; creating, adopting,
watching and deleting the job is :mod:`videollm.launcher.job_watch`, shared with the
``pytorchjob`` launcher, so both behave alike. The API is reached with the plain ``kubernetes``
client (``CustomObjectsApi``): the ``kubeflow`` SDK would install beside the pins, but would be
a second client with its own models for one resource. The launcher calls only what
:data:`videollm.launcher.rbac.RBAC_RULES` grants, plus one ``get`` on the
``ClusterTrainingRuntime`` (cluster-scoped: a namespaced Role cannot grant it, so a refusal only
means the runtime is not checked here; Trainer's webhook still is).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from videollm.errors import ConfigError, VideoLLMError
from videollm.launcher.base import TrainJobSpec
from videollm.launcher.job_backend import JobState
from videollm.launcher.job_status import API_ERRORS, Condition
from videollm.launcher.job_watch import WATCH_GRACE_S, WatchingLauncher
from videollm.launcher.k8s_errors import TRAINJOB, api_message, api_status
from videollm.launcher.registry import IN_CLUSTER_ENV, LAUNCHERS, LaunchSettings
from videollm.launcher.trainjob_manifest import (
    API_GROUP,
    CLUSTER_RUNTIME,
    NAMESPACED_RUNTIME,
    NODE_CONTAINER,
    NODE_JOB,
    PLURAL,
    build_trainjob,
)

log = logging.getLogger(__name__)

VERSION = "v1alpha1"
RUNTIMES_PLURAL = "trainingruntimes"
CLUSTER_RUNTIMES_PLURAL = "clustertrainingruntimes"
#: The master is pod 0 of job 0 of the ``node`` replicated job (JobSet's and Job's labels).
MASTER_SELECTOR = (
    "jobset.sigs.k8s.io/jobset-name={name},"
    f"jobset.sigs.k8s.io/replicatedjob-name={NODE_JOB},"
    "jobset.sigs.k8s.io/job-index=0,"
    "batch.kubernetes.io/job-completion-index=0"
)


class TrainJobLauncher(WatchingLauncher):
    """Submits a ``TrainJob`` (or adopts its run's earlier one), follows node 0's log and
    reports how the job ended.

    Args:
        api_client: A configured ``kubernetes`` API client; by default one is made on first
            use from the in-cluster service account or the kubeconfig.
        **kwargs: The watcher's settings (:class:`~videollm.launcher.job_watch.WatchingLauncher`).
    """

    log = log

    def __init__(self, api_client: k8s.ApiClient | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._api_client = api_client

    @property
    def api_client(self) -> k8s.ApiClient:
        """The API client, configured on first use."""
        if self._api_client is None:
            try:
                try:
                    k8s_config.load_incluster_config()
                except ConfigException:
                    k8s_config.load_kube_config()
            except ConfigException as exc:
                raise VideoLLMError(
                    "cannot configure a Kubernetes client: not running in a pod with a service "
                    f"account and no usable kubeconfig ({exc})"
                ) from exc
            self._api_client = k8s.ApiClient()
        return self._api_client

    def core_api(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api_client)

    def custom_api(self) -> k8s.CustomObjectsApi:
        """The API of the TrainJobs and the runtimes."""
        return k8s.CustomObjectsApi(self.api_client)

    def backend(self, spec: TrainJobSpec, owner: k8s.V1OwnerReference | None) -> _Backend:
        custom = self.custom_api()
        kind = runtime_kind(custom, spec)
        return _Backend(custom, self.core_api(), spec, build_trainjob(spec, kind, owner))


def runtime_kind(custom: k8s.CustomObjectsApi, spec: TrainJobSpec) -> str:
    """Whether ``spec.runtime`` is a ``TrainingRuntime`` of the job's namespace (looked up
    first) or a ``ClusterTrainingRuntime``; one that cannot be read is left to the webhook.

    Raises:
        ConfigError: Neither exists, or the runtime launches with MPI (videollm runs its
            processes with torchrun, DeepSpeed included).
    """
    name, namespace = spec.runtime, spec.namespace
    try:
        found = custom.get_namespaced_custom_object(
            API_GROUP, VERSION, namespace, RUNTIMES_PLURAL, name
        )
        _check_policy(found, f"{NAMESPACED_RUNTIME} {namespace}/{name}")
        return NAMESPACED_RUNTIME
    except API_ERRORS as exc:
        if api_status(exc) != 404:
            log.warning(
                "cannot read TrainingRuntime %s/%s (needs get on trainingruntimes): %s",
                namespace,
                name,
                api_message(exc),
            )
    try:
        found = custom.get_cluster_custom_object(API_GROUP, VERSION, CLUSTER_RUNTIMES_PLURAL, name)
    except API_ERRORS as exc:
        if api_status(exc) == 404:
            raise ConfigError(
                f"trainjob_runtime: runtime {name!r} not found: no TrainingRuntime {name!r} in "
                f"namespace {namespace!r} and no ClusterTrainingRuntime {name!r} (the chart "
                "installs videollm-torch; Kubeflow Trainer ships torch-distributed)"
            ) from exc
        # Cluster-scoped: the namespaced Role cannot grant this; Trainer's webhook decides.
        log.info(
            "cannot check ClusterTrainingRuntime %s (%s): creating the TrainJob anyway",
            name,
            api_status(exc) or exc,
        )
        return CLUSTER_RUNTIME
    _check_policy(found, f"{CLUSTER_RUNTIME} {name}")
    return CLUSTER_RUNTIME


def _check_policy(runtime: dict[str, Any], what: str) -> None:
    policy = (runtime.get("spec") or {}).get("mlPolicy") or {}
    if "mpi" in policy:
        raise ConfigError(
            f"trainjob_runtime: {what} launches its nodes with MPI; videollm runs its processes "
            "with torchrun (DeepSpeed too: set deepspeed=zero2/zero3): use a torch runtime such "
            "as videollm-torch or torch-distributed"
        )


class _Backend:
    """The ``CustomObjectsApi`` and ``CoreV1Api`` calls on one TrainJob."""

    kind = TRAINJOB
    # A TrainJob has no TTL of its own; its runtime's JobSet template may set one.
    ttl_s = None

    def __init__(
        self,
        custom: k8s.CustomObjectsApi,
        core: k8s.CoreV1Api,
        spec: TrainJobSpec,
        manifest: dict[str, Any],
    ) -> None:
        self._custom = custom
        self._core = core
        self._spec = spec
        self.manifest = manifest
        self._at = (API_GROUP, VERSION, spec.namespace, PLURAL)

    def create(self) -> None:
        self._custom.create_namespaced_custom_object(*self._at, body=self.manifest)

    def get(self) -> dict[str, Any]:
        return self._custom.get_namespaced_custom_object(*self._at, self._spec.name)

    def state(self, job: dict[str, Any]) -> JobState:
        meta = job.get("metadata") or {}
        conditions = [
            Condition.from_dict(c) for c in (job.get("status") or {}).get("conditions") or []
        ]
        true = {c.type for c in conditions if c.status == "True"}
        return JobState(
            conditions=conditions,
            succeeded="Complete" in true,
            failed="Failed" in true,
            labels=dict(meta.get("labels") or {}),
            owner_uids=[ref.get("uid") for ref in meta.get("ownerReferences") or []],
            deleting=meta.get("deletionTimestamp") is not None,
        )

    def patch(self, body: dict[str, Any]) -> None:
        self._custom.patch_namespaced_custom_object(*self._at, self._spec.name, body)

    def delete(self, foreground: bool) -> None:
        options = k8s.V1DeleteOptions(propagation_policy="Foreground" if foreground else None)
        self._custom.delete_namespaced_custom_object(*self._at, self._spec.name, body=options)

    def master_log(self) -> dict[str, str]:
        spec = self._spec
        pods = self._core.list_namespaced_pod(
            spec.namespace, label_selector=MASTER_SELECTOR.format(name=spec.name)
        ).items
        if not pods:
            return {}
        # A replaced pod (the Job's backoff) leaves the failed one behind: follow the newest.
        pod = max(pods, key=lambda p: p.metadata.creation_timestamp or 0).metadata.name
        text = self._core.read_namespaced_pod_log(pod, spec.namespace, container=NODE_CONTAINER)
        return {pod: text}


@LAUNCHERS.register(
    "trainjob",
    summary="a Kubeflow Trainer v2 TrainJob (trainer.kubeflow.org), watched until it ends",
)
def trainjob_launcher(settings: LaunchSettings) -> TrainJobLauncher:
    """A :class:`TrainJobLauncher` that waits :data:`WATCH_GRACE_S` past the job's deadline.

    Raises:
        ConfigError: The task does not run in a Kubernetes cluster.
    """
    if not os.environ.get(IN_CLUSTER_ENV):
        raise ConfigError(
            "launcher: trainjob needs a Kubernetes cluster with Kubeflow Trainer v2, and this "
            f"task does not run in one ({IN_CLUSTER_ENV} is unset): use launcher=local to "
            "train on this machine"
        )
    return TrainJobLauncher(
        timeout_s=settings.deadline_s + WATCH_GRACE_S,
        delete_on_success=settings.delete_on_success,
    )
