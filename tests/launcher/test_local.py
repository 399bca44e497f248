"""The local launcher, run for real: ``torchrun`` starting ``videollm`` on this machine."""

from __future__ import annotations

import logging
import re
import socket
import sys

import pytest

from videollm.errors import EXIT_CONFIG
from videollm.launcher.base import TrainJobSpec
from videollm.launcher.local import TorchrunLauncher, free_port, torchrun_command


def test_help_succeeds_and_streams_output(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOGLEVEL", raising=False)
    lines: list[str] = []
    # LOGLEVEL=INFO (from spec.env) makes torchrun print its launch config: proof the env and
    # the rendezvous port reach the process.
    spec = TrainJobSpec(name="local-help", args=["--help"], env={"LOGLEVEL": "INFO"})
    with caplog.at_level(logging.INFO, logger="videollm.launcher.local"):
        result = TorchrunLauncher(log_sink=lines.append).run(spec)
    assert result.succeeded, result.reason
    assert result.reason == ""
    assert "usage: videollm" in result.logs
    assert "Fine-tune, evaluate and chat with video LLMs." in lines
    child = "videollm.launcher.local.torchrun"
    output = [r.getMessage() for r in caplog.records if r.name == child]
    assert any(line.startswith("usage: videollm") for line in output)
    endpoint = re.search(r"rdzv_endpoint\s+: 127\.0\.0\.1:(\d+)", result.logs)
    assert endpoint and int(endpoint.group(1)) > 0
    assert re.search(r"nproc_per_node\s+: 1$", result.logs, re.MULTILINE)
    assert result.manifest == {}


def test_unknown_recipe_fails_with_reason_and_the_permanent_code() -> None:
    """The real train step under the entry point: a bad recipe exits EXIT_CONFIG (78), the
    code a PyTorchJob pod exits with so the operator does not retry it."""
    spec = TrainJobSpec(name="local-bad", args=["train", "--config", "no-such-recipe"])
    result = TorchrunLauncher().run(spec)
    assert not result.succeeded
    assert result.reason.startswith(
        f"torchrun exited with {EXIT_CONFIG} (permanent: the input is wrong, not retried): "
    )
    # The rank's own error, not torchrun's generic ChildFailedError report.
    assert "recipe no-such-recipe is neither a file nor a shipped preset" in result.reason
    assert "no-such-recipe" in result.logs


def test_command_line() -> None:
    spec = TrainJobSpec(name="x", args=["train", "--config", "demo"], procs_per_worker=3)
    assert torchrun_command(spec, 29517) == [
        sys.executable, "-m", "videollm.launcher.entry", "--nnodes=1", "--nproc_per_node=3",
        "--master_port=29517", "-m", "videollm.cli.main", "train", "--config", "demo",
    ]  # fmt: skip
    gpu = TrainJobSpec(name="x", args=[], gpus_per_worker=2)
    assert "--nproc_per_node=2" in torchrun_command(gpu, 29517)


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
