"""The master pod's log, followed by polling: each new line is emitted once, the tail is kept."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from kubeflow.training import TrainingClient

from videollm.launcher.base import TrainJobSpec
from videollm.launcher.pytorchjob_manifest import KIND

log = logging.getLogger("videollm.launcher.pytorchjob")
# The master's output goes to its own logger so a caller can route or silence it separately.
job_log = logging.getLogger("videollm.launcher.pytorchjob.master")

#: Lines of the master's log kept for :attr:`~videollm.launcher.base.LaunchResult.logs`.
LOG_TAIL_LINES = 500


class MasterLog:
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
