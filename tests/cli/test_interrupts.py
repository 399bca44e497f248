"""Interrupted training: Ctrl-C ends cleanly, and a killed run does not stay RUNNING."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from videollm.cli.main import EXIT_INTERRUPTED, main
from videollm.model.video_llm import VideoLLM
from videollm.tracking.stale import RUN_MARKER
from videollm.tracking.store import connect


def _train_args(data, llm, out: Path, max_steps: int) -> list[str]:
    return ["train", "--config", "demo", "--records", str(data["records"]),
            "--features", str(data["features"]), "--llm", str(llm), "--out", str(out),
            f"train.max_steps={max_steps}", "train.save_steps=1", "train.save_total_limit=2",
            "model.train_mode=projector"]  # fmt: skip


def _start_training(data, llm, out: Path) -> subprocess.Popen:
    """A long training run in its own process; its stderr goes to ``out``.log (a pipe that
    nobody reads while it trains could fill up and stall it)."""
    cmd = [sys.executable, "-m", "videollm.cli.main", *_train_args(data, llm, out, 100_000)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with _log(out).open("w") as log:
        return subprocess.Popen(cmd, stderr=log, text=True, env=env)


def _log(out: Path) -> Path:
    return out.with_suffix(".log")


def _wait_for_checkpoint(proc: subprocess.Popen, out: Path) -> None:
    deadline = time.monotonic() + 120
    while not list(out.glob("checkpoint-*/model.safetensors")):
        assert proc.poll() is None, _log(out).read_text()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.2)


def _status(run_id: str) -> str:
    return mlflow.MlflowClient().get_run(run_id).info.status


def _run_of(out: Path) -> str:
    return json.loads((out / RUN_MARKER).read_text())["run_id"]


@pytest.mark.slow
def test_ctrl_c_and_kill_9_leave_no_run_running(colour_data, tiny_llm_dir, tmp_path):
    connect().search_experiments()  # the SQLite store exists before the children open it
    stopped, killed = tmp_path / "stopped", tmp_path / "killed"
    # Two runs at once (the suite's time): one gets Ctrl-C, the other SIGKILL.
    procs = {out: _start_training(colour_data, tiny_llm_dir, out) for out in (stopped, killed)}
    for out, proc in procs.items():
        _wait_for_checkpoint(proc, out)

    # Ctrl-C: one line, exit 130, the run KILLED, every checkpoint left loads.
    procs[stopped].send_signal(signal.SIGINT)
    code = procs[stopped].wait(timeout=60)
    err = _log(stopped).read_text()
    assert code == EXIT_INTERRUPTED, err[-2000:]
    assert err.count("videollm train: interrupted") == 1
    assert "Traceback" not in err
    assert _status(_run_of(stopped)) == "KILLED"
    for checkpoint in sorted(stopped.glob("checkpoint-*")):
        VideoLLM.from_checkpoint(checkpoint, device="cpu")

    # SIGKILL: no handler runs, so the run stays RUNNING until its output is resumed. The
    # kill may land mid-save: resuming must then skip the half-saved checkpoint.
    procs[killed].kill()
    procs[killed].wait(timeout=60)
    dead = _run_of(killed)
    assert _status(dead) == "RUNNING"
    # Resuming with max_steps=1 stops at once: the checkpoint is already past it.
    assert main(_train_args(colour_data, tiny_llm_dir, killed, 1)) == 0
    assert _status(dead) == "KILLED"
    new = _run_of(killed)
    assert new != dead and _status(new) == "FINISHED"
