"""Run a :class:`TrainJobSpec` as a Kubeflow ``PyTorchJob`` and wait for it.

The manifest comes from :mod:`videollm.launcher.pytorchjob_manifest`. The launcher calls only
what :data:`videollm.launcher.rbac.RBAC_RULES` grants: create, get, patch and delete the job,
read its own pod (for the job's owner), list the job's pods and read the master's log.

A retried attempt of the same run (same :data:`~videollm.cluster.RUN_LABEL` value) finds
the job of an earlier attempt: it re-attaches to it while it runs, reports it if it succeeded,
and replaces it if it failed. The watcher deletes its job when it gets SIGTERM (KFP terminating
the run, the watcher pod being deleted or evicted).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable

from kubeflow.training import TrainingClient, models
from kubernetes import client as k8s
from kubernetes.config.config_exception import ConfigException

from videollm.cluster import RUN_LABEL
from videollm.errors import VideoLLMError
from videollm.launcher.base import LaunchResult, TrainJobSpec
from videollm.launcher.k8s_errors import api_error, api_status
from videollm.launcher.owner import run_owner, watcher_pod
from videollm.launcher.pytorchjob_log import MasterLog
from videollm.launcher.pytorchjob_manifest import KIND, build_pytorchjob, manifest_dict
from videollm.launcher.pytorchjob_status import JobGone, StatusPoller, failed_reason
from videollm.launcher.registry import LAUNCHERS, LaunchSettings
from videollm.launcher.signals import Terminated, sigterm_raises

log = logging.getLogger(__name__)

#: Lines of a failed master's log repeated at ERROR level, so the task log shows the cause.
ERROR_TAIL_LINES = 100
#: The watcher waits this much longer than the job's deadline, so the operator's own
#: ``DeadlineExceeded`` normally ends a hung job and the watcher only backs it up.
WATCH_GRACE_S = 600


class PyTorchJobLauncher:
    """Submits a ``PyTorchJob`` (or adopts its run's earlier one), follows the master's log and
    reports how the job ended.

    Args:
        client: A Kubeflow ``TrainingClient``; by default one is made on first use from the
            in-cluster service account or the kubeconfig.
        timeout_s: How long to wait for the job to finish before deleting it.
        poll_s: Seconds between status (and log) polls.
        delete_on_success: Delete the job after it succeeds (a failed job is kept, with its
            pods, until its ``ttlSecondsAfterFinished``; a timed-out one is deleted).
        log_sink: Called with every new line of the master's log, besides ``logging``.
        delete_wait_s: How long to wait for a failed job of an earlier attempt to be gone.
        pod: Returns ``(namespace, name)`` of the watcher's own pod, or ``None`` outside a
            cluster; the job's owner is found from it (:mod:`videollm.launcher.owner`).
        clock: Monotonic time source (seconds); tests pass a fake one.
        sleep: Sleeps between polls; tests pass one that advances the fake clock.
    """

    def __init__(
        self,
        client: TrainingClient | None = None,
        timeout_s: float = 24 * 3600,
        poll_s: float = 15,
        delete_on_success: bool = True,
        log_sink: Callable[[str], None] | None = None,
        *,
        delete_wait_s: float = 600,
        pod: Callable[[], tuple[str, str] | None] = watcher_pod,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.delete_on_success = delete_on_success
        self.log_sink = log_sink
        self.delete_wait_s = delete_wait_s
        self._pod = pod
        self._clock = clock
        self._sleep = sleep

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

    def run(self, spec: TrainJobSpec) -> LaunchResult:
        """Create (or adopt) the job, wait for it to end, and report how it ended.

        While it waits, SIGTERM deletes the job; then the previous SIGTERM handler is restored
        and the signal delivered to it again, and the run is reported failed.

        Args:
            spec: The training run.

        Returns:
            The outcome, the manifest and the tail of the master's log. A failed job's reason is
            its ``Failed`` condition's reason and message.

        Raises:
            ConfigError: ``spec`` cannot be expressed as a PyTorchJob.
            VideoLLMError: The job could not be created (missing permission, operator not
                installed, the name taken by a job of another run) or its status not read.
        """
        training = self.client
        owner = run_owner(training.core_api, self._pod(), spec.namespace)
        watch = _Watch(self, spec, build_pytorchjob(spec, owner), owner)
        try:
            with sigterm_raises():
                try:
                    return watch.run()
                except (Terminated, KeyboardInterrupt):
                    watch.abandon()
                    raise
        except Terminated:
            pass
        # The previous handler is back: let it act on the signal as if we had not been here.
        signal.raise_signal(signal.SIGTERM)
        reason = "the watcher got SIGTERM" + (
            f"; PyTorchJob {watch.where} was deleted" if watch.ours else ""
        )
        return LaunchResult(False, reason=reason, manifest=watch.manifest, logs=watch.logs.text())


class _Watch:
    """One call of :meth:`PyTorchJobLauncher.run`: submit or adopt the job, then follow it."""

    def __init__(
        self,
        launcher: PyTorchJobLauncher,
        spec: TrainJobSpec,
        job: models.KubeflowOrgV1PyTorchJob,
        owner: k8s.V1OwnerReference | None,
    ) -> None:
        self.launcher = launcher
        self.training = launcher.client
        self.spec = spec
        self.job = job
        self.owner = owner
        self.manifest = manifest_dict(job)
        self.where = f"{spec.namespace}/{spec.name}"
        self.logs = MasterLog(self.training, spec, launcher.log_sink)
        self.poller = StatusPoller(self.training, spec)
        # Whether the job under this name is this run's (created or adopted): only then may
        # SIGTERM delete it.
        self.ours = False

    def run(self) -> LaunchResult:
        done = self.submit()
        return done if done is not None else self.wait()

    def abandon(self) -> None:
        if self.ours:
            log.warning("the watcher was stopped: deleting PyTorchJob %s", self.where)
            self.delete()

    # --- submit, or adopt an earlier attempt's job ---------------------------------------------

    def submit(self) -> LaunchResult | None:
        """Create the job, or deal with the one an earlier attempt made.

        Returns:
            The outcome when nothing is left to wait for (the earlier job succeeded), else None.
        """
        try:
            self.create()
            return None
        except _Conflict:
            pass
        existing = self.existing()
        if existing is None:  # deleted since the 409
            self.create_again()
            return None
        return self.adopt(existing)

    def create(self) -> None:
        spec = self.spec
        self.ours = True
        try:
            self.training.create_job(job=self.job, namespace=spec.namespace)
        except (RuntimeError, TimeoutError) as exc:
            self.ours = False
            if api_status(exc) == 409:
                raise _Conflict from exc
            raise api_error(exc, "create", spec) from exc
        log.info(
            "created PyTorchJob %s: %d node(s) × %d process(es), %d GPU(s) per node",
            self.where,
            spec.num_workers,
            spec.nproc,
            spec.gpus_per_worker,
        )

    def existing(self) -> models.KubeflowOrgV1PyTorchJob | None:
        """The job that holds the name, or ``None`` if it is gone since."""
        while True:
            try:
                job = self.poller.get()
            except JobGone:
                return None
            if job is not None:
                return job
            self.launcher._sleep(self.launcher.poll_s)

    def adopt(self, existing: models.KubeflowOrgV1PyTorchJob) -> LaunchResult | None:
        run = self.spec.labels.get(RUN_LABEL)
        theirs = (existing.metadata.labels or {}).get(RUN_LABEL)
        if not run or theirs != run:
            kubectl = f"kubectl -n {self.spec.namespace} delete pytorchjob {self.spec.name}"
            raise VideoLLMError(
                f"PyTorchJob {self.where} already exists and is not this run's ({RUN_LABEL}: "
                f"{theirs or 'unset'}, this run: {run or 'unset'}): delete it ({kubectl}) or "
                "pick another job name"
            )
        self.ours = True
        training = self.training
        if existing.metadata.deletion_timestamp is None:
            if training.is_job_succeeded(job=existing, job_kind=KIND):
                log.info("PyTorchJob %s of this run succeeded in an earlier attempt", self.where)
                return self.succeeded()
            if not training.is_job_failed(job=existing, job_kind=KIND):
                log.info("re-attaching to PyTorchJob %s of an earlier attempt", self.where)
                self.refresh_owner(existing)
                return None
            log.warning(
                "PyTorchJob %s of this run failed in an earlier attempt: replacing it", self.where
            )
            self.delete(foreground=True)
        self.wait_gone()
        self.create_again()
        return None

    def create_again(self) -> None:
        """Create the job once the name is free; a second 409 means something else took it."""
        try:
            self.create()
        except _Conflict as conflict:
            raise api_error(conflict.__cause__ or conflict, "create", self.spec) from conflict

    def refresh_owner(self, existing: models.KubeflowOrgV1PyTorchJob) -> None:
        """Point the job at this attempt's owner if it names another (a bare pod, retried)."""
        if self.owner is None:
            return
        refs = existing.metadata.owner_references or []
        if any(ref.uid == self.owner.uid for ref in refs):
            return
        owners = self.manifest["metadata"]["ownerReferences"]
        try:
            self.training.update_job(
                {"metadata": {"ownerReferences": owners}}, self.spec.name, self.spec.namespace, KIND
            )
            log.info("PyTorchJob %s now belongs to %s", self.where, self.owner.name)
        except (RuntimeError, TimeoutError) as exc:
            log.warning(
                "cannot point PyTorchJob %s at its new owner (needs patch on pytorchjobs): %s",
                self.where,
                exc,
            )

    def wait_gone(self) -> None:
        deadline = self.launcher._clock() + self.launcher.delete_wait_s
        while True:
            try:
                self.poller.get()
            except JobGone:
                return
            if self.launcher._clock() >= deadline:
                raise VideoLLMError(
                    f"PyTorchJob {self.where} still exists {self.launcher.delete_wait_s:g} s "
                    "after it was deleted (a finalizer?): delete it by hand and retry"
                )
            self.launcher._sleep(self.launcher.poll_s)

    # --- follow the job to its end -------------------------------------------------------------

    def wait(self) -> LaunchResult:
        training, launcher = self.training, self.launcher
        deadline = launcher._clock() + launcher.timeout_s
        while True:
            try:
                current = self.poller.get()
            except JobGone:
                reason = f"PyTorchJob {self.where} disappeared while running (deleted by someone?)"
                log.error("%s", reason)
                return LaunchResult(
                    False, reason=reason, manifest=self.manifest, logs=self.logs.text()
                )
            if current is not None:
                conditions = training.get_job_conditions(job=current, job_kind=KIND)
                self.poller.note(conditions)
                if training.is_job_succeeded(job=current, job_kind=KIND):
                    return self.succeeded()
                if training.is_job_failed(job=current, job_kind=KIND):
                    return self.failed(failed_reason(conditions))
                self.logs.poll()
            now = launcher._clock()
            if now >= deadline:
                logs = self.logs.poll(final=True)
                reason = f"timed out after {launcher.timeout_s:g} s"
                log.error("PyTorchJob %s %s; deleting it", self.where, reason)
                self.delete()
                return LaunchResult(False, reason=reason, manifest=self.manifest, logs=logs)
            launcher._sleep(min(launcher.poll_s, deadline - now))

    def succeeded(self) -> LaunchResult:
        logs = self.logs.poll(final=True)
        log.info("PyTorchJob %s succeeded", self.where)
        if self.launcher.delete_on_success:
            self.delete()
        return LaunchResult(True, manifest=self.manifest, logs=logs)

    def failed(self, reason: str) -> LaunchResult:
        logs = self.logs.poll(final=True)
        tail = logs.splitlines()[-ERROR_TAIL_LINES:]
        ttl = self.spec.ttl_after_finished_s
        kept = f"kept for {ttl} s" if ttl is not None else "kept"
        # Its pods (cleanPodPolicy None) and events explain more, until the TTL removes them.
        log.error(
            "PyTorchJob %s failed: %s (job and pods %s); the master's last %d log lines:\n%s",
            self.where,
            reason,
            kept,
            len(tail),
            "\n".join(tail),
        )
        return LaunchResult(False, reason=reason, manifest=self.manifest, logs=logs)

    def delete(self, foreground: bool = False) -> None:
        """Delete the job; ``foreground``: it stays (being deleted) until its pods are gone."""
        # A failed delete must not turn a finished run into an error: warn and move on.
        options = k8s.V1DeleteOptions(propagation_policy="Foreground") if foreground else None
        try:
            self.training.delete_job(
                self.spec.name, namespace=self.spec.namespace, job_kind=KIND, delete_options=options
            )
            log.info("deleted PyTorchJob %s", self.where)
        except (RuntimeError, TimeoutError) as exc:
            log.warning("could not delete PyTorchJob %s: %s", self.where, exc)


class _Conflict(Exception):
    """``create`` answered 409: a job of that name exists."""


@LAUNCHERS.register(
    "pytorchjob", summary="a Kubeflow PyTorchJob (training operator v1), watched until it ends"
)
def pytorchjob_launcher(settings: LaunchSettings) -> PyTorchJobLauncher:
    """A :class:`PyTorchJobLauncher` that waits :data:`WATCH_GRACE_S` past the job's deadline."""
    return PyTorchJobLauncher(
        timeout_s=settings.deadline_s + WATCH_GRACE_S,
        delete_on_success=settings.delete_on_success,
    )
