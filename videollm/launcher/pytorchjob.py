"""Run a :class:`TrainJobSpec` as a Kubeflow ``PyTorchJob`` and wait for it.

The manifest comes from :mod:`videollm.launcher.pytorchjob_manifest`. The launcher calls only
what :data:`videollm.launcher.rbac.RBAC_RULES` grants: create, get and delete the job, list its
pods and read the master's log.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable

from kubeflow.training import TrainingClient, models
from kubernetes.config.config_exception import ConfigException

from videollm.errors import VideoLLMError
from videollm.launcher.base import LaunchResult, TrainJobSpec
from videollm.launcher.pytorchjob_manifest import KIND, build_pytorchjob, manifest_dict

log = logging.getLogger(__name__)
# The master's output goes to its own logger so a caller can route or silence it separately.
job_log = logging.getLogger(f"{__name__}.master")

#: Lines of the master's log kept for :attr:`LaunchResult.logs`.
LOG_TAIL_LINES = 500
#: Consecutive failed ``get`` calls tolerated (API server restarts, network blips).
MAX_GET_ERRORS = 5


class PyTorchJobLauncher:
    """Submits a ``PyTorchJob``, follows the master's log and reports how the job ended.

    Args:
        client: A Kubeflow ``TrainingClient``; by default one is made on first use from the
            in-cluster service account or the kubeconfig.
        timeout_s: How long to wait for the job to finish before deleting it.
        poll_s: Seconds between status (and log) polls.
        delete_on_success: Delete the job after it succeeds (a failed or timed-out job's
            handling is fixed: failed jobs are kept for debugging, timed-out ones deleted).
        log_sink: Called with every new line of the master's log, besides ``logging``.
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
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.delete_on_success = delete_on_success
        self.log_sink = log_sink
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
        """Create the job, wait for it to end, and report how it ended.

        Args:
            spec: The training run.

        Returns:
            The outcome, the submitted manifest and the tail of the master's log. A failed job's
            reason is its ``Failed`` condition's reason and message.

        Raises:
            ConfigError: ``spec`` cannot be expressed as a PyTorchJob.
            VideoLLMError: The job could not be created (missing permission, name taken,
                operator not installed) or its status could not be read.
        """
        job = build_pytorchjob(spec)
        manifest = manifest_dict(job)
        training = self.client
        where = f"{spec.namespace}/{spec.name}"
        try:
            training.create_job(job=job, namespace=spec.namespace)
        except (RuntimeError, TimeoutError) as exc:
            raise _api_error(exc, "create", spec) from exc
        log.info(
            "created PyTorchJob %s: %d node(s) × %d process(es), %d GPU(s) per node",
            where,
            spec.num_workers,
            spec.nproc,
            spec.gpus_per_worker,
        )
        master_log = _MasterLog(training, spec, self.log_sink)
        poller = _StatusPoller(training, spec)
        deadline = self._clock() + self.timeout_s
        while True:
            try:
                current = poller.get()
            except _JobGone:
                reason = f"PyTorchJob {where} disappeared while running (deleted by someone?)"
                log.error("%s", reason)
                logs = master_log.text()
                return LaunchResult(False, reason=reason, manifest=manifest, logs=logs)
            if current is not None:
                conditions = training.get_job_conditions(job=current, job_kind=KIND)
                poller.note(conditions)
                if training.is_job_succeeded(job=current, job_kind=KIND):
                    logs = master_log.poll(final=True)
                    log.info("PyTorchJob %s succeeded", where)
                    if self.delete_on_success:
                        self._delete(spec)
                    return LaunchResult(True, manifest=manifest, logs=logs)
                if training.is_job_failed(job=current, job_kind=KIND):
                    logs = master_log.poll(final=True)
                    reason = _failed_reason(conditions)
                    # Kept on purpose: its pods (cleanPodPolicy None) and events explain why.
                    log.error("PyTorchJob %s failed: %s (job kept for debugging)", where, reason)
                    return LaunchResult(False, reason=reason, manifest=manifest, logs=logs)
                master_log.poll()
            now = self._clock()
            if now >= deadline:
                logs = master_log.poll(final=True)
                reason = f"timed out after {self.timeout_s:g} s"
                log.error("PyTorchJob %s %s; deleting it", where, reason)
                self._delete(spec)
                return LaunchResult(False, reason=reason, manifest=manifest, logs=logs)
            self._sleep(min(self.poll_s, deadline - now))

    def _delete(self, spec: TrainJobSpec) -> None:
        # A failed delete must not turn a finished run into an error: warn and move on.
        try:
            self.client.delete_job(spec.name, namespace=spec.namespace, job_kind=KIND)
            log.info("deleted PyTorchJob %s/%s", spec.namespace, spec.name)
        except (RuntimeError, TimeoutError) as exc:
            log.warning("could not delete PyTorchJob %s/%s: %s", spec.namespace, spec.name, exc)


class _JobGone(Exception):
    """The job no longer exists (404 on ``get``)."""


class _StatusPoller:
    """Reads the job, tolerating a few transient API errors, and logs condition changes."""

    def __init__(self, training: TrainingClient, spec: TrainJobSpec) -> None:
        self._training = training
        self._spec = spec
        self._errors = 0
        self._seen: set[tuple[str, str]] = set()

    def get(self) -> models.KubeflowOrgV1PyTorchJob | None:
        """The job, or ``None`` after a transient error (the next poll tries again).

        Raises:
            _JobGone: The job was deleted.
            VideoLLMError: Reading it is forbidden, or failed :data:`MAX_GET_ERRORS` times in a row.
        """
        spec = self._spec
        try:
            job = self._training.get_job(spec.name, namespace=spec.namespace, job_kind=KIND)
        except (RuntimeError, TimeoutError) as exc:
            status = _status(exc)
            if status == 404:
                raise _JobGone from exc
            self._errors += 1
            if status in (401, 403) or self._errors >= MAX_GET_ERRORS:
                raise _api_error(exc, "get", spec) from exc
            log.warning(
                "reading PyTorchJob %s/%s failed (%d/%d), retrying: %s",
                spec.namespace,
                spec.name,
                self._errors,
                MAX_GET_ERRORS,
                exc,
            )
            return None
        self._errors = 0
        return job

    def note(self, conditions: list[models.V1JobCondition]) -> None:
        """Log each condition the first time it becomes true."""
        for c in conditions:
            key = (str(c.type), str(c.last_transition_time))
            if c.status == "True" and key not in self._seen:
                self._seen.add(key)
                log.info(
                    "PyTorchJob %s/%s: %s (%s)",
                    self._spec.namespace,
                    self._spec.name,
                    c.type,
                    c.message,
                )


class _MasterLog:
    """Follows the master pod's log by polling it and emitting only the lines not seen yet.

    ``TrainingClient.get_job_logs(follow=True)`` prints to stdout from threads, so the log is
    re-read each poll instead (``pods list`` + ``pods/log get``) and diffed against what was
    already emitted.
    """

    def __init__(
        self,
        training: TrainingClient,
        spec: TrainJobSpec,
        sink: Callable[[str], None] | None,
    ) -> None:
        self._training = training
        self._spec = spec
        self._sink = sink
        self._emitted: dict[str, str] = {}
        self._tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self._warned = False

    def poll(self, final: bool = False) -> str:
        """Emit new log lines; with ``final``, also a last line without a newline.

        Returns:
            The tail of the log emitted so far.
        """
        try:
            logs, _ = self._training.get_job_logs(
                self._spec.name, namespace=self._spec.namespace, job_kind=KIND, is_master=True
            )
        except (RuntimeError, TimeoutError) as exc:
            # Logs are a convenience: the job's status decides the outcome, so only warn once.
            if not self._warned:
                self._warned = True
                log.warning(
                    "cannot read the master's log of PyTorchJob %s/%s (needs list on pods and "
                    "get on pods/log): %s",
                    self._spec.namespace,
                    self._spec.name,
                    exc,
                )
            return self.text()
        for pod, text in logs.items():
            self._emit(pod, text if isinstance(text, str) else str(text), final)
        return self.text()

    def text(self) -> str:
        """The last :data:`LOG_TAIL_LINES` lines emitted."""
        return "\n".join(self._tail) + ("\n" if self._tail else "")

    def _emit(self, pod: str, text: str, final: bool) -> None:
        before = self._emitted.get(pod, "")
        if text.startswith(before):
            new = text[len(before) :]
        else:
            # The pod log no longer extends what we saw: the container restarted (OnFailure).
            job_log.info("[%s] --- container restarted; log starts again ---", pod)
            self._tail.append("--- container restarted ---")
            before, new = "", text
        if not final:
            # Hold back a partial last line until its newline arrives.
            new = new[: new.rfind("\n") + 1]
        self._emitted[pod] = before + new
        for line in new.splitlines():
            job_log.info("[%s] %s", pod, line)
            self._tail.append(line)
            if self._sink is not None:
                self._sink(line)


def _failed_reason(conditions: list[models.V1JobCondition]) -> str:
    for c in conditions:
        if c.type == "Failed" and c.status == "True":
            return f"{c.reason or 'Failed'}: {c.message}" if c.message else c.reason or "Failed"
    return "Failed"


def _status(exc: BaseException) -> int | None:
    """HTTP status of the ``ApiException`` that ``TrainingClient`` wrapped, if any."""
    return getattr(exc.__cause__, "status", None)


def _api_message(exc: BaseException) -> str:
    """The API server's own message (from its ``Status`` body), else the exception text."""
    body = getattr(exc.__cause__, "body", None)
    if body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if message:
            return str(message)
    return str(exc)


def _api_error(exc: BaseException, verb: str, spec: TrainJobSpec) -> VideoLLMError:
    where = f"{spec.namespace}/{spec.name}"
    status = _status(exc)
    if status in (401, 403):
        return VideoLLMError(
            f"Kubernetes refused to {verb} PyTorchJob {where} ({status}): the service account "
            f"needs {verb!r} on pytorchjobs.kubeflow.org in namespace {spec.namespace!r} "
            f"(see videollm.launcher.rbac.RBAC_RULES): {_api_message(exc)}"
        )
    if status == 409:
        return VideoLLMError(
            f"PyTorchJob {where} already exists: delete it "
            f"(kubectl -n {spec.namespace} delete pytorchjob {spec.name}) or pick another job name"
        )
    if status == 404 and verb == "create":
        return VideoLLMError(
            f"cannot create PyTorchJob {where}: the kubeflow.org/v1 PyTorchJob CRD is not "
            f"installed (Kubeflow training operator) or namespace {spec.namespace!r} does not "
            f"exist: {_api_message(exc)}"
        )
    if status == 422:
        return VideoLLMError(f"the API server rejected PyTorchJob {where}: {_api_message(exc)}")
    return VideoLLMError(f"cannot {verb} PyTorchJob {where}: {_api_message(exc)}")
