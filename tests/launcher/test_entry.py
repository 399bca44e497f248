"""The pod's entry point, run for real under torchrun (gloo, CPU): its exit code decides whether
the training operator's ``ExitCode`` policy retries the pod (128-255) or fails the job (1-127).

The ranks run the real CLI (``videollm.cli.main.main``) with its train step replaced by one
that fails at once, so the runs take seconds instead of importing the training stack; the full
``train`` path is in ``test_local.py``. The runs go in parallel.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from torch.distributed.elastic.multiprocessing import ProcessFailure

from videollm.errors import EXIT_CONFIG
from videollm.launcher.entry import EXIT_RETRYABLE, describe, exit_code
from videollm.launcher.local import free_port

# A rank: the CLI's train command, failing the way RAISE says.
RANK = """
import os, sys
from videollm.cli import main as cli
from videollm.errors import ConfigError

def train(args):
    if os.environ["RAISE"] == "config":
        raise ConfigError(f"recipe {args.config} is neither a file nor a shipped preset")
    raise RuntimeError("CUDA error: an illegal memory access was encountered")

cli._cmd_train = train
sys.exit(cli.main(["train", "--config", "no-such-recipe"]))
"""


def _start(script: Path, nproc: int, what: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "videollm.launcher.entry", "--nnodes=1",
           f"--nproc_per_node={nproc}", f"--master_port={free_port()}", str(script)]  # fmt: skip
    env = {**os.environ, "RAISE": what}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip


def test_exit_codes_under_torchrun(tmp_path: Path) -> None:
    script = tmp_path / "rank.py"
    script.write_text(RANK)
    runs = {
        # Both ranks hit the bad recipe: permanent, the job fails once.
        "config": _start(script, 2, "config"),
        # A crash the CLI does not handle (Python exits 1): torchrun alone would say 1, which
        # the operator would take as permanent.
        "crash": _start(script, 1, "crash"),
    }
    out = {what: proc.communicate(timeout=120)[0] for what, proc in runs.items()}
    codes = {what: proc.returncode for what, proc in runs.items()}
    assert codes == {"config": EXIT_CONFIG, "crash": EXIT_RETRYABLE}, out
    assert "videollm train: error: recipe no-such-recipe is neither a file" in out["config"]
    assert f"exiting with {EXIT_CONFIG} (permanent" in out["config"]
    assert "CUDA error: an illegal memory access" in out["crash"]


def _failure(rank: int, code: int) -> ProcessFailure:
    return ProcessFailure(local_rank=rank, pid=100 + rank, exitcode=code, error_file="<N/A>")


def test_mapping_of_failed_ranks() -> None:
    sigterm = -int(signal.SIGTERM)
    # torchrun stops the other ranks with SIGTERM after the first failure: not a cause.
    assert exit_code({0: _failure(0, EXIT_CONFIG), 1: _failure(1, sigterm)}) == EXIT_CONFIG
    assert exit_code({0: _failure(0, 2)}) == EXIT_CONFIG  # argparse: bad flags from the pipeline
    # One rank's input error next to another rank's crash: the crash may pass, so retry.
    assert exit_code({0: _failure(0, EXIT_CONFIG), 1: _failure(1, 1)}) == EXIT_RETRYABLE
    assert exit_code({0: _failure(0, 1)}) == EXIT_RETRYABLE  # EXIT_ERROR: storage, MLflow down
    assert exit_code({0: _failure(0, -9)}) == EXIT_RETRYABLE  # the kernel's OOM killer
    assert exit_code({0: _failure(0, sigterm)}) == EXIT_RETRYABLE
    # What the operator does with them: 1-127 permanent, 128-255 retried.
    assert 1 <= EXIT_CONFIG <= 127 and 128 <= EXIT_RETRYABLE <= 255
    assert describe(EXIT_CONFIG).startswith("permanent") and describe(143) == "retryable"
