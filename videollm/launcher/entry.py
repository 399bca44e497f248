"""``torchrun`` with exit codes that tell a permanent failure from one worth retrying.

``python -m videollm.launcher.entry <torchrun flags> -m videollm.cli.main train ...`` runs
exactly what ``torchrun`` runs (same flags, same ``PET_*`` variables), but torchrun exits with 1
whenever a process fails, whatever that process's own exit code. Under the training operator's
``ExitCode`` restart policy 1 means "permanent", so an OOM or a lost node would never be
retried. This entry point maps the processes' codes instead:

- every failed process exited with a permanent code (:data:`PERMANENT_EXIT_CODES`: the CLI's
  input error :data:`~videollm.errors.EXIT_CONFIG`, argparse's usage error 2) →
  :data:`~videollm.errors.EXIT_CONFIG`: the operator fails the job at once;
- any other failure (a crash, a signal, a storage error) → :data:`EXIT_RETRYABLE`;
- the agent itself was sent a signal (pod deleted, evicted) → ``128 + signal``;
- the agent failed on its own (rendezvous timeout: a peer pod not up yet) → :data:`EXIT_RETRYABLE`.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from videollm.errors import EXIT_CONFIG

if TYPE_CHECKING:
    from torch.distributed.elastic.multiprocessing import ProcessFailure

log = logging.getLogger("videollm.launcher.entry")

#: Process exit codes that retrying cannot fix: the CLI's input error and argparse's usage error.
PERMANENT_EXIT_CODES = frozenset({EXIT_CONFIG, 2})
#: What the pod exits with when a failure may pass. Training operator v1 retries 128-255; 200 is
#: above the 128+N of signals so it is told apart from a pod killed by one.
EXIT_RETRYABLE = 200


def exit_code(failures: Mapping[int, ProcessFailure]) -> int:
    """The pod's exit code for the processes that failed (global rank → failure).

    Once one process fails, torchrun stops the others with SIGTERM and lists them as failed
    too (exit code ``-15``): those say nothing about the cause and are left out. Any other
    process killed by a signal (negative code, e.g. ``-9`` from the OOM killer) is retryable.
    """
    causes = [f.exitcode for f in failures.values() if f.exitcode != -signal.SIGTERM]
    if causes and all(code in PERMANENT_EXIT_CODES for code in causes):
        return EXIT_CONFIG
    return EXIT_RETRYABLE


def describe(code: int) -> str:
    """What an exit code of this entry point means, for logs and failure reasons."""
    if code == EXIT_CONFIG:
        return "permanent: the input is wrong, not retried"
    if code >= 128:
        return "retryable"
    return "permanent"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``torchrun`` with ``argv`` (its flags, then the script or ``-m module`` and args).

    Returns:
        0 on success, else the code chosen as the module docstring describes.
    """
    # torch only here: the watcher imports this module for its exit codes, not to train.
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        run(args)
    except ChildFailedError as exc:
        code = exit_code(exc.failures)
        log.error("%s\nexiting with %d (%s)", exc.format_msg(), code, describe(code))
        return code
    except SignalException as exc:
        code = 128 + int(exc.sigval)
        log.error("torchrun got signal %s; exiting with %d (retryable)", exc.sigval, code)
        return code
    except Exception:
        # Not a training process's failure: rendezvous or agent trouble, which may pass.
        log.exception("torchrun failed; exiting with %d (retryable)", EXIT_RETRYABLE)
        return EXIT_RETRYABLE
    return 0


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sys.exit(main())
