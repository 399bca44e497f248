"""The master pod's log, followed by polling: each new line is emitted once, the tail is kept."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from videollm.launcher.job_status import API_ERRORS

#: Lines of the master's log kept for :attr:`~videollm.launcher.base.LaunchResult.logs`.
LOG_TAIL_LINES = 500


class MasterLog:
    """Follows the master pod's log by polling it and emitting only the lines not seen yet.

    The log is re-read each poll (``pods list`` + ``pods/log get``) and diffed against what was
    already emitted: following it with a stream would need a thread per pod.

    Args:
        read: Returns the master pod's log by pod name (raises one of
            :data:`~videollm.launcher.job_status.API_ERRORS` when it cannot).
        where: ``"<Kind> <namespace>/<name>"`` of the job, for the warning.
        log: The launcher's logger; the master's lines go to its ``.master`` child, so a caller
            can route or silence them separately.
        sink: Called with every new line, besides ``logging``.
    """

    def __init__(
        self,
        read: Callable[[], dict[str, str]],
        where: str,
        log: logging.Logger,
        sink: Callable[[str], None] | None,
    ) -> None:
        self._read = read
        self._where = where
        self._log = log
        self._job_log = log.getChild("master")
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
            logs = self._read()
        except API_ERRORS as exc:
            # Logs are a convenience: the job's status decides the outcome, so only warn once.
            if not self._warned:
                self._warned = True
                self._log.warning(
                    "cannot read the master's log of %s (needs list on pods and get on "
                    "pods/log): %s",
                    self._where,
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
            # The pod log no longer extends what we saw: the container restarted.
            self._job_log.info("[%s] --- container restarted; log starts again ---", pod)
            self._tail.append("--- container restarted ---")
            before, new = "", text
        if not final:
            # Hold back a partial last line until its newline arrives.
            new = new[: new.rfind("\n") + 1]
        self._emitted[pod] = before + new
        for line in new.splitlines():
            self._job_log.info("[%s] %s", pod, line)
            self._tail.append(line)
            if self._sink is not None:
                self._sink(line)
