"""Steps as users run them: local folders or s3:// URIs, lineage, and one MLflow run per step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow import MlflowClient

from videollm.config_loader import load_config
from videollm.data.convert import ConvertConfig
from videollm.errors import ConfigError
from videollm.eval.evaluate import EvalConfig
from videollm.features.extract import ExtractConfig
from videollm.lineage import META_FILE
from videollm.steps import run_convert, run_evaluate, run_extract, run_train
from videollm.storage import resolve
from videollm.storage.sync import upload_dir
from videollm.tracking import CHECKPOINT_TAG, select_champion
from videollm.train.loop import load_train_config


def _chain(videos: str, annotations: str, base: str, clip, llm) -> dict:
    run_extract(videos, f"{base}/features", ExtractConfig(encoder=str(clip), num_frames=8))
    run_convert(
        ConvertConfig(format="jsonl", input=annotations, out=f"{base}/records", val_fraction=0.25)
    )
    flags = {
        "records": f"{base}/records",
        "features": f"{base}/features",
        "out": f"{base}/ckpt",
        "model": {"llm": str(llm)},
    }
    run_train(load_train_config("demo", ["train.epochs=10"], flags=flags))
    cfg = load_config(
        EvalConfig,
        overrides=["generation.max_new_tokens=8"],
        flags={
            "checkpoint": f"{base}/ckpt",
            "records": f"{base}/records/val.jsonl",
            "features": f"{base}/features",
            "out": f"{base}/eval",
        },
    )
    return run_evaluate(cfg)


@pytest.mark.slow
def test_local_chain_writes_lineage_and_mlflow_runs(
    colour_data, tiny_clip_dir, tiny_llm_dir, tmp_path
):
    base = str(tmp_path / "run")
    metrics = _chain(
        str(colour_data["videos"]),
        str(colour_data["root"] / "annotations.jsonl"),
        base,
        tiny_clip_dir,
        tiny_llm_dir,
    )
    assert metrics["exact_match"] >= 0.8
    for step, folder in [
        ("extract", "features"),
        ("convert", "records"),
        ("train", "ckpt"),
        ("evaluate", "eval"),
    ]:
        meta = json.loads((tmp_path / "run" / folder / META_FILE).read_text())
        assert meta["step"] == step and meta["mlflow_run_id"] and meta["config_hash"]
        assert all(i["digest"] for i in meta["inputs"].values())

    client = MlflowClient()
    train_meta = json.loads((tmp_path / "run" / "ckpt" / META_FILE).read_text())
    train_run = client.get_run(train_meta["mlflow_run_id"])
    assert train_run.data.tags[CHECKPOINT_TAG] == f"{base}/ckpt"
    assert train_run.data.metrics["val/exact_match"] == metrics["exact_match"]
    assert train_run.data.params["optim.lr"] == "0.003"
    history = client.get_metric_history(train_run.info.run_id, "train/loss")
    assert len(history) >= 5 and history[-1].value < history[0].value
    assert {d.dataset.name for d in train_run.inputs.dataset_inputs} >= {"records", "features"}


@pytest.mark.slow
def test_s3_chain_reads_and_writes_the_bucket(
    colour_data, tiny_clip_dir, tiny_llm_dir, s3_env, tmp_path
):
    upload_dir(colour_data["videos"], "s3://videos/colour")
    storage, _ = resolve("s3://videos/ann.jsonl")
    storage.put(colour_data["root"] / "annotations.jsonl", "ann.jsonl")

    metrics = _chain(
        "s3://videos/colour", "s3://videos/ann.jsonl", "s3://work/run1", tiny_clip_dir, tiny_llm_dir
    )
    assert metrics["exact_match"] >= 0.8
    work, _ = resolve("s3://work")
    keys = work.list("run1/")
    assert sum(k.startswith("run1/features/") and k.endswith(".safetensors") for k in keys) == 24
    for prefix in ("features", "records", "ckpt", "eval"):
        assert f"run1/{prefix}/{META_FILE}" in keys
    assert "run1/ckpt/model.safetensors" in keys and "run1/eval/predictions.jsonl" in keys
    assert not [k for k in keys if k.endswith(".tmp")]


@pytest.mark.slow
def test_killed_s3_extraction_resumes_without_redoing(colour_data, tiny_clip_dir, s3_env, tmp_path):
    upload_dir(colour_data["videos"], "s3://videos/kill")
    out = "s3://work/kill-features"
    cmd = [
        sys.executable, "-m", "videollm.cli.main", "extract", "--videos", "s3://videos/kill",
        "--out", out, "--encoder", str(tiny_clip_dir), "--num-frames", "8", "--batch-size", "1",
        "--num-workers", "0",
    ]  # fmt: skip
    env = {**os.environ, "VIDEOLLM_CACHE_DIR": str(tmp_path / "cache1")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work, _ = resolve("s3://work")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if sum(k.endswith(".safetensors") for k in work.list("kill-features/")) >= 3:
            break
        time.sleep(0.05)
    proc.kill()  # kill -9 mid-way
    proc.wait()
    finished = {k for k in work.list("kill-features/") if k.endswith(".safetensors")}
    assert 3 <= len(finished) < 24, "the run must be interrupted part-way"

    # A fresh machine (empty cache) resumes from the bucket alone.
    shutil.rmtree(tmp_path / "cache1", ignore_errors=True)
    env["VIDEOLLM_CACHE_DIR"] = str(tmp_path / "cache2")
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert summary["skipped"] >= len(finished) and summary["done"] == 24 - summary["skipped"]
    keys = work.list("kill-features/")
    assert sum(k.endswith(".safetensors") for k in keys) == 24
    assert not [k for k in keys if k.endswith(".tmp")]


@pytest.mark.slow
def test_remote_mlflow_proxies_artifacts_to_s3_and_registers_the_champion(
    colour_data, tiny_clip_dir, tiny_llm_dir, s3_env, mlflow_s3_server, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_s3_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "s3-artifacts")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    resolve("s3://mlflow")[0].put_bytes(".keep", b"")  # the artifact bucket must exist
    base = "s3://work/remote"
    metrics = _chain(
        str(colour_data["videos"]), str(colour_data["root"] / "annotations.jsonl"), base,
        tiny_clip_dir, tiny_llm_dir,
    )  # fmt: skip
    assert metrics["exact_match"] >= 0.8

    result = select_champion("s3-artifacts", "val/exact_match", "max", "remote-model")
    assert result.promoted and result.best.checkpoint_uri == f"{base}/ckpt"
    api = "/api/2.0/mlflow/registered-models/alias?name=remote-model&alias=champion"
    url = mlflow_s3_server + api
    with urllib.request.urlopen(url, timeout=10) as response:
        assert json.load(response)["model_version"]["source"] == f"{base}/ckpt"

    # Artifacts went through the server into the bucket, none to local disk.
    keys = resolve("s3://mlflow")[0].list("artifacts/")
    assert any(k.endswith("plots/loss.png") for k in keys)
    assert any(k.endswith("predictions.jsonl") for k in keys)


@pytest.mark.slow
def test_sharded_s3_extraction_splits_the_videos_and_reads_back_as_one(
    colour_data, tiny_clip_dir, s3_env, tmp_path, monkeypatch
):
    from videollm.features.store import feature_path
    from videollm.storage.staging import stage_in
    from videollm.video.paths import list_videos

    upload_dir(colour_data["videos"], "s3://videos/sharded")
    cfg = ExtractConfig(encoder=str(tiny_clip_dir), num_frames=8, num_workers=0)
    done = []
    for index in range(3):
        # Each shard on its own "machine": it downloads only its own videos.
        monkeypatch.setenv("VIDEOLLM_CACHE_DIR", str(tmp_path / f"cache{index}"))
        result = run_extract("s3://videos/sharded", "s3://work/sharded", cfg, shard=(index, 3))
        downloaded = list_videos(tmp_path / f"cache{index}")
        assert len(downloaded) == result.done
        done.append(result.done)
    assert sum(done) == 24 and all(n > 0 for n in done)

    work, _ = resolve("s3://work")
    keys = [k for k in work.list("sharded/") if k.endswith(".safetensors")]
    assert len(keys) == 24 and {k.split("/")[1] for k in keys} == {f"shard-00{i}" for i in range(3)}
    local = stage_in("s3://work/sharded")
    for vid, _ in list_videos(colour_data["videos"]):
        assert feature_path(local, vid).is_file()
    with pytest.raises(ConfigError, match="shard 3 of 3"):
        run_extract("s3://videos/sharded", "s3://work/sharded", cfg, shard=(3, 3))
