"""SIGTERM as an exception while a watcher waits, so it can clean up before it goes."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class Terminated(Exception):
    """SIGTERM arrived while the launcher was waiting."""


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn the first SIGTERM into :class:`Terminated`; restore the previous handler after.

    Later SIGTERMs are ignored until then, so they cannot interrupt the job's deletion.
    Python runs signal handlers in the main thread only: elsewhere this does nothing.

    Raises:
        Terminated: In the body of the ``with`` block, when SIGTERM arrives.
    """
    if threading.current_thread() is not threading.main_thread():
        log.debug("not the main thread: SIGTERM will not delete the training job")
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    tripped = False

    def handler(signum: int, frame: object) -> None:
        nonlocal tripped
        if not tripped:
            tripped = True
            raise Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        # None: a handler installed outside Python, which cannot be put back; use the default.
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
