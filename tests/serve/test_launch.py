"""Resolving what ``videollm serve`` serves: paths and registry URIs (and the device the
benchmark's baseline uses, which must be the service's)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from videollm.errors import VideoLLMError
from videollm.serve.launch import resolve_checkpoint
from videollm.tracking.lookup import registry_version

ROOT = Path(__file__).resolve().parents[2]


def test_champion_alias_resolves_to_the_registered_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    client = MlflowClient()
    with mlflow.start_run() as run:
        pass
    client.create_registered_model("served")
    version = client.create_model_version("served", source=str(ckpt), run_id=run.info.run_id)
    client.set_registered_model_alias("served", "champion", version.version)
    assert resolve_checkpoint(model_uri="models:/served@champion") == ckpt
    assert resolve_checkpoint(model_uri=f"models:/served/{version.version}") == ckpt
    assert resolve_checkpoint(checkpoint=str(ckpt)) == ckpt


def test_resolving_a_registry_version_logs_no_storage_location(tmp_path, caplog):
    # The source may be a presigned or credentialed URI: name, version and run id only.
    ckpt = tmp_path / "bucket-with-credentials" / "ckpt"
    ckpt.mkdir(parents=True)
    client = MlflowClient()
    with mlflow.start_run() as run:
        pass
    client.create_registered_model("quiet")
    client.create_model_version("quiet", source=str(ckpt), run_id=run.info.run_id)
    caplog.set_level(logging.INFO, logger="videollm.tracking.lookup")
    assert registry_version("models:/quiet/1")["mlflow_source"] == str(ckpt)
    assert "bucket-with-credentials" not in caplog.text
    assert "models:/quiet/1 is version 1 of quiet" in caplog.text
    assert run.info.run_id in caplog.text


def test_bad_requests_are_named():
    with pytest.raises(VideoLLMError, match="exactly one"):
        resolve_checkpoint()
    with pytest.raises(VideoLLMError, match="models:/NAME@ALIAS"):
        resolve_checkpoint(model_uri="runs:/abc/model")
    with pytest.raises(VideoLLMError, match="cannot resolve models:/nope@champion"):
        resolve_checkpoint(model_uri="models:/nope@champion")


def test_serve_config_picks_one_model_source():
    from videollm.serve.engine import locate
    from videollm.serve.serve_config import ServeConfig

    with pytest.raises(VideoLLMError, match="only one of"):
        locate(ServeConfig(checkpoint="a", model_uri="models:/x@champion"))
    from videollm.serve.launch import bento_model

    with pytest.raises(VideoLLMError, match="run `videollm package` first"):
        bento_model("never-packaged")


def test_serve_cli_refuses_before_starting_a_server(capsys):
    from videollm.cli.main import main

    assert main(["serve"]) == 1
    assert "exactly one of --bento, --checkpoint or --model-uri" in capsys.readouterr().err
    assert main(["serve", "--model-uri", "models:/nope@champion"]) == 1
    assert "cannot resolve models:/nope@champion" in capsys.readouterr().err


def test_benchmark_baseline_runs_on_the_service_device(monkeypatch):
    """``benchmarks/serve.py --device cuda`` sets VIDEOLLM_DEVICE for both servers."""
    from videollm.features import encoder
    from videollm.model.video_llm import VideoLLM

    placed = {}
    model = SimpleNamespace(
        checkpoint_config=SimpleNamespace(extract={"encoder": "enc", "num_frames": 8}),
        projector=torch.nn.Linear(1, 1),  # "auto" put the model on the CPU
    )

    def from_checkpoint(directory: str, device: str = "auto") -> SimpleNamespace:
        placed["model"] = device
        return model

    monkeypatch.setattr(VideoLLM, "from_checkpoint", from_checkpoint)
    monkeypatch.setattr(encoder, "VideoEncoder", lambda *args: placed.setdefault("enc", args))
    monkeypatch.setenv("VIDEOLLM_CHECKPOINT", "ckpt")
    monkeypatch.setenv("VIDEOLLM_DEVICE", "cuda")
    spec = importlib.util.spec_from_file_location(
        "serve_baseline", ROOT / "benchmarks" / "serve_baseline.py"
    )
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert placed["model"] == "cuda"
    assert placed["enc"][-1] == "cpu"  # the encoder follows the model, as in the service
