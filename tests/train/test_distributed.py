"""Training under torchrun (2 processes, gloo) and resuming an interrupted run."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from videollm.data.records import read_records
from videollm.errors import ConfigError
from videollm.train.loop import SUMMARY_FILE, load_train_config, train
from videollm.train.train_config import grad_accumulation, optimizer_steps


def _free_port() -> int:
    # torchrun's rendezvous hangs with --master_port=0, so pick a free port ourselves.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _args(data, llm, out):
    return [
        "--config", "demo", "--records", str(data["records"]), "--features", str(data["features"]),
        "--llm", str(llm), "--out", str(out),
    ]  # fmt: skip


@pytest.mark.slow
def test_torchrun_two_processes_takes_the_documented_steps(colour_data, tiny_llm_dir, tmp_path):
    out = tmp_path / "ckpt"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        f"--master_port={_free_port()}",
        "-m", "videollm.cli.main", "train", *_args(colour_data, tiny_llm_dir, out),
        "train.epochs=2", "train.micro_batch_size=1", "train.global_batch_size=4",
        "train.gradient_checkpointing=true",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]

    n = len(read_records(colour_data["records"] / "train.jsonl"))
    accumulation = grad_accumulation(4, 1, 2)
    expected = optimizer_steps(n, 2, 1, 2, accumulation)
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert accumulation == 2
    assert summary["result"]["global_step"] == expected == summary["result"]["expected_steps"]
    assert (out / "model.safetensors").is_file()


def test_batch_that_does_not_divide_is_refused(colour_data, tiny_llm_dir, tmp_path):
    flags = {"records": str(colour_data["records"]), "features": str(colour_data["features"]),
             "out": str(tmp_path), "model": {"llm": str(tiny_llm_dir)}}  # fmt: skip
    cfg = load_train_config(
        "demo", ["train.global_batch_size=3", "train.micro_batch_size=2"], flags
    )
    with pytest.raises(ConfigError, match=r"global_batch_size=3 .* = 2 × 1"):
        train(cfg)
    # Divisible by the micro batch but not by micro batch × processes.
    cfg = load_train_config(
        "demo", ["train.global_batch_size=2", "train.micro_batch_size=2"], flags
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORLD_SIZE", "2")
        with pytest.raises(ConfigError, match=r"micro_batch_size × processes = 2 × 2"):
            train(cfg)


@pytest.mark.slow
def test_resume_continues_from_the_saved_step(colour_data, tiny_llm_dir, tmp_path):
    overrides = [
        "train.epochs=2",
        "train.save_steps=3",
        "train.save_total_limit=10",
        "train.logging_steps=1",
    ]
    flags = {"records": str(colour_data["records"]), "features": str(colour_data["features"]),
             "model": {"llm": str(tiny_llm_dir)}}  # fmt: skip
    full = train(
        load_train_config("demo", overrides, flags=flags | {"out": str(tmp_path / "full")})
    )

    # Simulate a run killed after step 3: only checkpoint-3 survived.
    part = tmp_path / "part"
    shutil.copytree(tmp_path / "full" / "checkpoint-3", part / "checkpoint-3")
    resumed = train(load_train_config("demo", overrides, flags=flags | {"out": str(part)}))

    assert resumed.resumed_from is not None and resumed.resumed_from.endswith("checkpoint-3")
    assert resumed.global_step == full.global_step

    def losses(out):
        history = json.loads((out / SUMMARY_FILE).read_text())["log_history"]
        return {h["step"]: h["loss"] for h in history if "loss" in h}

    # Steps after 3 were re-run from the saved optimizer, scheduler and RNG state: same trajectory.
    full_losses, resumed_losses = losses(tmp_path / "full"), losses(part)
    assert full_losses.keys() == resumed_losses.keys() and max(full_losses) > 3
    for step in (s for s in full_losses if s > 3):
        assert resumed_losses[step] == pytest.approx(full_losses[step], rel=1e-4), step
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(part / "model.safetensors")
    torch.testing.assert_close(a["projector.weight"], b["projector.weight"], rtol=1e-4, atol=1e-5)
