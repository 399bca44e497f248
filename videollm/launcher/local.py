"""Run a :class:`TrainJobSpec` on this machine under ``torchrun`` (one node, ``nproc`` processes).

The same ``videollm`` command a PyTorchJob pod runs, so a pipeline behaves alike with and without
a cluster. Image, node selector and the other pod settings do not apply here.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Callable

from videollm.launcher.base import LaunchResult, TrainJobSpec
from videollm.launcher.entry import describe
from videollm.launcher.registry import LAUNCHERS, LaunchSettings

log = logging.getLogger(__name__)
# The training process's output goes to its own logger so a caller can route it separately.
proc_log = logging.getLogger(f"{__name__}.torchrun")

#: Lines of output kept for :attr:`LaunchResult.logs`.
LOG_TAIL_LINES = 200

# A line that states an error: argparse/CLI style ("videollm train: error: ...") or the last
# line of a Python traceback ("ValueError: ..."). The entry point's own report of a failed rank
# comes after the rank's output, so the first such line is the rank's own message.
_ERROR_LINE = re.compile(r"(\berror:\s)|(^[\w.]*(Error|Exception): \S)", re.IGNORECASE)


def free_port() -> int:
    """A TCP port that is free on localhost right now (for torchrun's rendezvous).

    ``--master_port=0`` would make torchrun hang, so a port is picked by binding to port 0.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def torchrun_command(spec: TrainJobSpec, master_port: int) -> list[str]:
    """The ``torchrun`` command line that runs ``videollm <spec.args>`` on one node.

    Through :mod:`videollm.launcher.entry`, as in a PyTorchJob pod, so the exit code means the
    same here (:data:`~videollm.errors.EXIT_CONFIG`: the input is wrong).
    """
    return [
        sys.executable,
        "-m",
        "videollm.launcher.entry",
        "--nnodes=1",
        f"--nproc_per_node={spec.nproc}",
        f"--master_port={master_port}",
        "-m",
        "videollm.cli.main",
        *spec.args,
    ]


class TorchrunLauncher:
    """Runs the job as a local ``torchrun`` process and streams its output to ``logging``.

    Args:
        log_sink: Called with every output line, besides ``logging``.
    """

    def __init__(self, log_sink: Callable[[str], None] | None = None) -> None:
        self.log_sink = log_sink

    def run(self, spec: TrainJobSpec) -> LaunchResult:
        """Run ``spec`` to completion on this machine.

        Args:
            spec: The training run; ``num_workers`` above 1 is ignored (one node only).

        Returns:
            ``succeeded`` when torchrun exits with 0; otherwise a reason naming the exit code
            and the first error line of the output. ``logs`` holds the last
            :data:`LOG_TAIL_LINES` lines.
        """
        if spec.num_workers > 1:
            log.warning(
                "job %s asks for %d nodes; running on this machine only (%d process(es))",
                spec.name,
                spec.num_workers,
                spec.nproc,
            )
        cmd = torchrun_command(spec, free_port())
        # Unbuffered, so the output arrives line by line while training runs, not at exit.
        env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
        log.info("running %s: %s", spec.name, " ".join(cmd))
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        first_error = ""
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
        )
        try:
            for raw in proc.stdout or ():
                line = raw.rstrip("\n")
                proc_log.info("%s", line)
                tail.append(line)
                if not first_error and _ERROR_LINE.search(line):
                    first_error = line.strip()
                if self.log_sink is not None:
                    self.log_sink(line)
            rc = proc.wait()
        finally:
            # Interrupted (Ctrl-C, an exception in log_sink): do not leave training running.
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        logs = "\n".join(tail) + ("\n" if tail else "")
        if rc == 0:
            log.info("%s finished", spec.name)
            return LaunchResult(True, logs=logs)
        reason = f"torchrun exited with {rc} ({describe(rc)})" + (
            f": {first_error}" if first_error else ""
        )
        log.error("%s failed: %s", spec.name, reason)
        return LaunchResult(False, reason=reason, logs=logs)


@LAUNCHERS.register(
    "local", summary="torchrun on this machine (one node; pod settings do not apply)"
)
def local_launcher(settings: LaunchSettings) -> TorchrunLauncher:
    """A :class:`TorchrunLauncher`: it waits for torchrun to end and has no job to delete, so
    the settings do not apply."""
    del settings
    return TorchrunLauncher()
