"""Resolving what ``videollm serve`` serves: paths and registry URIs."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from videollm.errors import VideoLLMError
from videollm.serve.launch import resolve_checkpoint


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


def test_bad_requests_are_named():
    with pytest.raises(VideoLLMError, match="exactly one"):
        resolve_checkpoint()
    with pytest.raises(VideoLLMError, match="models:/NAME@ALIAS"):
        resolve_checkpoint(model_uri="runs:/abc/model")
    with pytest.raises(VideoLLMError, match="cannot resolve models:/nope@champion"):
        resolve_checkpoint(model_uri="models:/nope@champion")


def test_serve_config_picks_one_model_source():
    from videollm.serve.config import ServeConfig
    from videollm.serve.engine import locate

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
