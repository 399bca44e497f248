"""Create (or adopt) a cluster training job, follow it to its end, delete it when it is done.

Shared by the ``pytorchjob`` and ``trainjob`` launchers, which differ only in their
:class:`JobBackend` (the API calls of one job kind), so both behave alike: the job is named per
run; a retried attempt of the same run (same :data:`~videollm.cluster.RUN_LABEL` value) finds the
job of an earlier attempt, re-attaches to it while it runs, reports it if it succeeded and
replaces it if it failed; the master's log streams into the task's log; a failed job's reason is
its ``Failed`` condition; a timed-out job is deleted, and so is one whose watcher gets SIGTERM
(KFP terminating the run, the watcher pod being deleted or evicted).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s

from videollm.cluster import RUN_LABEL
from videollm.errors import VideoLLMError
from videollm.launcher.base import LaunchResult, TrainJobSpec
from videollm.launcher.job_backend import JobBackend, JobState
from videollm.launcher.job_log import MasterLog
from videollm.launcher.job_status import API_ERRORS, JobGone, StatusPoller, failed_reason
from videollm.launcher.k8s_errors import api_error, api_status
from videollm.launcher.owner import run_owner, watcher_pod
from videollm.launcher.signals import Terminated, sigterm_raises

#: The watcher waits this much longer than the job's deadline, so the operator's own
#: ``DeadlineExceeded`` normally ends a hung job and the watcher only backs it up.
WATCH_GRACE_S = 600
#: Lines of a failed master's log repeated at ERROR level, so the task log shows the cause.
ERROR_TAIL_LINES = 100


class WatchingLauncher:
    """Submits a cluster job (or adopts its run's earlier one), follows the master's log and
    reports how the job ended. A subclass says how to reach the API and build the backend.

    Args:
        timeout_s: How long to wait for the job to finish before deleting it.
        poll_s: Seconds between status (and log) polls.
        delete_on_success: Delete the job after it succeeds (a failed job is kept, with its
            pods, for ``kubectl logs``; a timed-out one is deleted).
        log_sink: Called with every new line of the master's log, besides ``logging``.
        delete_wait_s: How long to wait for a failed job of an earlier attempt to be gone.
        pod: Returns ``(namespace, name)`` of the watcher's own pod, or ``None`` outside a
            cluster; the job's owner is found from it (:mod:`videollm.launcher.owner`).
        clock: Monotonic time source (seconds); tests pass a fake one.
        sleep: Sleeps between polls; tests pass one that advances the fake clock.
    """

    #: The launcher's logger (the master's lines go to its ``.master`` child).
    log: logging.Logger

    def __init__(
        self,
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
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.delete_on_success = delete_on_success
        self.log_sink = log_sink
        self.delete_wait_s = delete_wait_s
        self._pod = pod
        self._clock = clock
        self._sleep = sleep

    def core_api(self) -> k8s.CoreV1Api:
        """The core API (the watcher's own pod, the job's pods and logs)."""
        raise NotImplementedError

    def backend(self, spec: TrainJobSpec, owner: k8s.V1OwnerReference | None) -> JobBackend:
        """The API calls on the job of ``spec``, owned by ``owner``.

        Raises:
            ConfigError: ``spec`` cannot be expressed as this kind of job.
        """
        raise NotImplementedError

    def run(self, spec: TrainJobSpec) -> LaunchResult:
        """Create (or adopt) the job, wait for it to end, and report how it ended.

        While it waits, SIGTERM deletes the job; then the previous SIGTERM handler is restored
        and the signal delivered to it again, and the run is reported failed.

        Returns:
            The outcome, the manifest and the tail of the master's log. A failed job's reason is
            its ``Failed`` condition's reason and message.

        Raises:
            ConfigError: ``spec`` cannot be expressed as this kind of job.
            VideoLLMError: The job could not be created (missing permission, operator not
                installed, the name taken by a job of another run) or its status not read.
        """
        owner = run_owner(self.core_api(), self._pod(), spec.namespace)
        watch = _Watch(self, spec, self.backend(spec, owner), owner)
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
        reason = "the watcher got SIGTERM" + (f"; {watch.where} was deleted" if watch.ours else "")
        return LaunchResult(False, reason=reason, manifest=watch.manifest, logs=watch.logs.text())


class _Watch:
    """One call of :meth:`WatchingLauncher.run`: submit or adopt the job, then follow it."""

    def __init__(
        self,
        launcher: WatchingLauncher,
        spec: TrainJobSpec,
        backend: JobBackend,
        owner: k8s.V1OwnerReference | None,
    ) -> None:
        self.launcher = launcher
        self.log = launcher.log
        self.backend = backend
        self.kind = backend.kind
        self.spec = spec
        self.owner = owner
        self.manifest = backend.manifest
        self.where = f"{self.kind.kind} {spec.namespace}/{spec.name}"
        self.logs = MasterLog(backend.master_log, self.where, self.log, launcher.log_sink)
        self.poller = StatusPoller(backend.get, spec, self.kind, self.log)
        # Whether the job under this name is this run's (created or adopted): only then may
        # SIGTERM delete it.
        self.ours = False

    def run(self) -> LaunchResult:
        done = self.submit()
        return done if done is not None else self.wait()

    def abandon(self) -> None:
        if self.ours:
            self.log.warning("the watcher was stopped: deleting %s", self.where)
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
        return self.adopt(self.backend.state(existing))

    def create(self) -> None:
        spec = self.spec
        self.ours = True
        try:
            self.backend.create()
        except API_ERRORS as exc:
            self.ours = False
            if api_status(exc) == 409:
                raise _Conflict from exc
            raise api_error(exc, "create", spec, self.kind) from exc
        self.log.info(
            "created %s: %d node(s) × %d process(es), %d GPU(s) per node",
            self.where,
            spec.num_workers,
            spec.nproc,
            spec.gpus_per_worker,
        )

    def existing(self) -> Any:
        """The job that holds the name, or ``None`` if it is gone since."""
        while True:
            try:
                job = self.poller.get()
            except JobGone:
                return None
            if job is not None:
                return job
            self.launcher._sleep(self.launcher.poll_s)

    def adopt(self, existing: JobState) -> LaunchResult | None:
        spec, kind = self.spec, self.kind.kind
        run = spec.labels.get(RUN_LABEL)
        theirs = existing.labels.get(RUN_LABEL)
        if not run or theirs != run:
            kubectl = f"kubectl -n {spec.namespace} delete {kind.lower()} {spec.name}"
            raise VideoLLMError(
                f"{self.where} already exists and is not this run's ({RUN_LABEL}: "
                f"{theirs or 'unset'}, this run: {run or 'unset'}): delete it ({kubectl}) or "
                "pick another job name"
            )
        self.ours = True
        if not existing.deleting:
            if existing.succeeded:
                self.log.info("%s of this run succeeded in an earlier attempt", self.where)
                return self.succeeded()
            if not existing.failed:
                self.log.info("re-attaching to %s of an earlier attempt", self.where)
                self.refresh_owner(existing)
                return None
            self.log.warning(
                "%s of this run failed in an earlier attempt: replacing it", self.where
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
            cause = conflict.__cause__ or conflict
            raise api_error(cause, "create", self.spec, self.kind) from conflict

    def refresh_owner(self, existing: JobState) -> None:
        """Point the job at this attempt's owner if it names another (a bare pod, retried)."""
        if self.owner is None or self.owner.uid in existing.owner_uids:
            return
        owners = self.manifest["metadata"]["ownerReferences"]
        try:
            self.backend.patch({"metadata": {"ownerReferences": owners}})
            self.log.info("%s now belongs to %s", self.where, self.owner.name)
        except API_ERRORS as exc:
            self.log.warning(
                "cannot point %s at its new owner (needs patch on %s): %s",
                self.where,
                self.kind.plural,
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
                    f"{self.where} still exists {self.launcher.delete_wait_s:g} s "
                    "after it was deleted (a finalizer?): delete it by hand and retry"
                )
            self.launcher._sleep(self.launcher.poll_s)

    # --- follow the job to its end -------------------------------------------------------------

    def wait(self) -> LaunchResult:
        launcher = self.launcher
        deadline = launcher._clock() + launcher.timeout_s
        while True:
            try:
                current = self.poller.get()
            except JobGone:
                reason = f"{self.where} disappeared while running (deleted by someone?)"
                self.log.error("%s", reason)
                return LaunchResult(
                    False, reason=reason, manifest=self.manifest, logs=self.logs.text()
                )
            if current is not None:
                state = self.backend.state(current)
                self.poller.note(state.conditions)
                if state.succeeded:
                    return self.succeeded()
                if state.failed:
                    return self.failed(failed_reason(state.conditions))
                self.logs.poll()
            now = launcher._clock()
            if now >= deadline:
                logs = self.logs.poll(final=True)
                reason = f"timed out after {launcher.timeout_s:g} s"
                self.log.error("%s %s; deleting it", self.where, reason)
                self.delete()
                return LaunchResult(False, reason=reason, manifest=self.manifest, logs=logs)
            launcher._sleep(min(launcher.poll_s, deadline - now))

    def succeeded(self) -> LaunchResult:
        logs = self.logs.poll(final=True)
        self.log.info("%s succeeded", self.where)
        if self.launcher.delete_on_success:
            self.delete()
        return LaunchResult(True, manifest=self.manifest, logs=logs)

    def failed(self, reason: str) -> LaunchResult:
        logs = self.logs.poll(final=True)
        tail = logs.splitlines()[-ERROR_TAIL_LINES:]
        ttl = self.backend.ttl_s
        kept = f"kept for {ttl} s" if ttl is not None else "kept"
        # Its pods and events explain more, until the TTL removes them.
        self.log.error(
            "%s failed: %s (job and pods %s); the master's last %d log lines:\n%s",
            self.where,
            reason,
            kept,
            len(tail),
            "\n".join(tail),
        )
        return LaunchResult(False, reason=reason, manifest=self.manifest, logs=logs)

    def delete(self, foreground: bool = False) -> None:
        # A failed delete must not turn a finished run into an error: warn and move on.
        try:
            self.backend.delete(foreground)
            self.log.info("deleted %s", self.where)
        except API_ERRORS as exc:
            self.log.warning("could not delete %s: %s", self.where, exc)


class _Conflict(Exception):
    """``create`` answered 409: a job of that name exists."""
