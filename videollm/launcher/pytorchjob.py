"""Run a :class:`TrainJobSpec` as a Kubeflow ``PyTorchJob`` (training operator v1) and wait for it.

The manifest comes from :mod:`videollm.launcher.pytorchjob_manifest`; creating, adopting,
watching and deleting the job is :mod:`videollm.launcher.job_watch`, shared with the ``trainjob``
launcher. The launcher calls only what :data:`videollm.launcher.rbac.RBAC_RULES` grants: create,
get, patch and delete the job, read its own pod (for the job's owner), list the job's pods and
read the master's log.
"""

from __future__ import annotations

import logging
from typing import Any

from kubeflow.training import TrainingClient
from kubernetes import client as k8s
from kubernetes.config.config_exception import ConfigException

from videollm.errors import VideoLLMError
from videollm.launcher.base import TrainJobSpec
from videollm.launcher.job_backend import JobState
from videollm.launcher.job_watch import WATCH_GRACE_S, WatchingLauncher
from videollm.launcher.k8s_errors import PYTORCHJOB
from videollm.launcher.pytorchjob_manifest import KIND, build_pytorchjob, manifest_dict
from videollm.launcher.registry import LAUNCHERS, LaunchSettings

log = logging.getLogger(__name__)


class PyTorchJobLauncher(WatchingLauncher):
    """Submits a ``PyTorchJob`` (or adopts its run's earlier one), follows the master's log and
    reports how the job ended.

    Args:
        client: A Kubeflow ``TrainingClient``; by default one is made on first use from the
            in-cluster service account or the kubeconfig.
        **kwargs: The watcher's settings (:class:`~videollm.launcher.job_watch.WatchingLauncher`).
    """

    log = log

    def __init__(self, client: TrainingClient | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client = client

    @property
    def client(self) -> TrainingClient:
        """The ``TrainingClient``, configured on first use."""
        if self._client is None:
            try:
                self._client = TrainingClient(job_kind=KIND)
            except ConfigException as exc:
                raise VideoLLMError(
                    "cannot configure a Kubernetes client: not running in a pod with a service "
                    f"account and no usable kubeconfig ({exc})"
                ) from exc
        return self._client

    def core_api(self) -> k8s.CoreV1Api:
        return self.client.core_api

    def backend(self, spec: TrainJobSpec, owner: k8s.V1OwnerReference | None) -> _Backend:
        return _Backend(self.client, spec, owner)


class _Backend:
    """The ``TrainingClient`` calls on one PyTorchJob."""

    kind = PYTORCHJOB

    def __init__(
        self, training: TrainingClient, spec: TrainJobSpec, owner: k8s.V1OwnerReference | None
    ) -> None:
        self._training = training
        self._spec = spec
        self._job = build_pytorchjob(spec, owner)
        self.manifest = manifest_dict(self._job)
        self.ttl_s = spec.ttl_after_finished_s

    def create(self) -> None:
        self._training.create_job(job=self._job, namespace=self._spec.namespace)

    def get(self) -> Any:
        return self._training.get_job(
            self._spec.name, namespace=self._spec.namespace, job_kind=KIND
        )

    def state(self, job: Any) -> JobState:
        training, meta = self._training, job.metadata
        return JobState(
            conditions=training.get_job_conditions(job=job, job_kind=KIND),
            succeeded=training.is_job_succeeded(job=job, job_kind=KIND),
            failed=training.is_job_failed(job=job, job_kind=KIND),
            labels=dict(meta.labels or {}),
            owner_uids=[ref.uid for ref in meta.owner_references or []],
            deleting=meta.deletion_timestamp is not None,
        )

    def patch(self, body: dict[str, Any]) -> None:
        self._training.update_job(body, self._spec.name, self._spec.namespace, KIND)

    def delete(self, foreground: bool) -> None:
        options = k8s.V1DeleteOptions(propagation_policy="Foreground") if foreground else None
        self._training.delete_job(
            self._spec.name, namespace=self._spec.namespace, job_kind=KIND, delete_options=options
        )

    def master_log(self) -> dict[str, str]:
        # get_job_logs(follow=True) prints to stdout from threads: read the whole log instead.
        logs, _ = self._training.get_job_logs(
            self._spec.name, namespace=self._spec.namespace, job_kind=KIND, is_master=True
        )
        return logs


@LAUNCHERS.register(
    "pytorchjob", summary="a Kubeflow PyTorchJob (training operator v1), watched until it ends"
)
def pytorchjob_launcher(settings: LaunchSettings) -> PyTorchJobLauncher:
    """A :class:`PyTorchJobLauncher` that waits :data:`WATCH_GRACE_S` past the job's deadline."""
    return PyTorchJobLauncher(
        timeout_s=settings.deadline_s + WATCH_GRACE_S,
        delete_on_success=settings.delete_on_success,
    )
