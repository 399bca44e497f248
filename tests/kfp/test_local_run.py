"""The ``finetune`` pipeline run for real through ``kfp.local`` (tier 2), as ``videollm demo``
runs it: every task succeeds, Metrics are written, the champion alias is set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kfp_outputs import task_metrics, task_outputs
from mlflow import MlflowClient

from videollm.demo.run import run_demo
from videollm.errors import EXIT_CONFIG

TASKS = ["plan-shards", "convert", "train", "evaluate", "select", "package"]


@pytest.mark.slow
def test_demo_runs_the_finetune_pipeline_end_to_end(tmp_path, monkeypatch):
    monkeypatch.delenv("VIDEOLLM_ENCODER", raising=False)
    monkeypatch.delenv("VIDEOLLM_LLM", raising=False)
    # As `make demo` runs it: no MLFLOW_TRACKING_URI, so the demo keeps its registry in `out`
    # (monkeypatch restores the test's store afterwards).
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    summary = run_demo(tmp_path, n_per_class=4)
    root = Path(summary["pipeline_root"])
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert summary["mlflow"] == store and (tmp_path / "mlflow.db").is_file()
    assert summary["serve"].startswith(f"MLFLOW_TRACKING_URI={store} videollm serve --model-uri")
    features = sorted(Path(summary["features"]).glob("shard-*/*.safetensors"))
    assert len(features) == 12 and (Path(summary["records"]) / "train.jsonl").is_file()

    for task in TASKS:
        assert task_outputs(root, task)["parameterValues"]["Output"], task
    shards = [task_outputs(root, f"for-loop-1-iteration-{i}/extract") for i in range(2)]
    done = [s["artifacts"]["metrics"]["artifacts"][0]["metadata"]["done"] for s in shards]
    assert sum(done) == 12 and all(n > 0 for n in done)  # 2 shards shared the 12 videos

    assert task_metrics(root, "train")["train_final_loss"] < 1.0
    assert task_metrics(root, "evaluate")["exact_match"] >= 0.6
    assert (
        task_metrics(root, "select")["val_exact_match"]
        == task_metrics(root, "evaluate")["exact_match"]
    )
    job = next(root.iterdir()) / "train" / "job"
    assert "torchrun" in job.read_text()  # a local run: no PyTorchJob

    champion = MlflowClient().get_model_version_by_alias("videollm", "champion")
    assert champion.source == summary["checkpoint"] and summary["champion_is_this_run"]
    assert champion.run_id in summary["mlflow_run"]
    assert summary["champion"] == f"models:/videollm@champion (version {champion.version})"
    bento = json.loads((next(root.iterdir()) / "package" / "bento").read_text())
    assert Path(bento["uri"]).is_file() and bento["mlflow_version"] == str(champion.version)
    assert summary["chat"]["answer"] == summary["chat"]["truth"]


@pytest.mark.slow
def test_a_bad_parameter_fails_the_first_task_with_a_clear_message(colour_data, tmp_path):
    cmd = [
        sys.executable, "-m", "videollm.cli.main", "pipeline", "run", "--local",
        "--out", str(tmp_path), "--param", f"videos_uri={colour_data['videos']}",
        "--param", f"annotations_uri={colour_data['root'] / 'annotations.jsonl'}",
        "--param", "annotation_format=nope",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "annotation_format: 'nope' is not one of videochatgpt" in done.stdout + done.stderr
    assert "Inner task failed" in done.stderr and "plan-shards" in done.stderr
    executed = [line for line in done.stdout.splitlines() if "Executing task" in line]
    assert len(executed) == 1 and "plan-shards" in executed[0]  # nothing else started


def test_a_cluster_launcher_is_refused_before_any_task_runs(tmp_path, monkeypatch):
    """``launcher=trainjob`` under kfp.local fails at once, saying to use launcher=local."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    cmd = [
        sys.executable, "-m", "videollm.cli.main", "pipeline", "run", "--local",
        "--out", str(tmp_path), "--param", f"videos_uri={tmp_path}",
        "--param", f"annotations_uri={tmp_path / 'a.jsonl'}", "--param", "launcher=trainjob",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "trainjob needs a Kubernetes cluster" in done.stderr
    assert "use launcher=local" in done.stderr
    assert "Executing task" not in done.stdout + done.stderr  # no task started
    assert not (tmp_path / "kfp").exists()


@pytest.mark.slow
def test_the_pipeline_reads_and_writes_s3(
    colour_data, tiny_clip_dir, tiny_llm_dir, s3_env, tmp_path
):
    """Videos, annotations and every task's output in the bucket; only MLflow stays local."""
    from videollm.kfp.runner import run_local
    from videollm.storage import resolve
    from videollm.storage.sync import upload_dir
    from videollm.tracking.lookup import champion_summary

    upload_dir(colour_data["videos"], "s3://videos/pipeline")
    resolve("s3://videos")[0].put(colour_data["root"] / "annotations.jsonl", "pipeline.jsonl")
    params = {
        "videos_uri": "s3://videos/pipeline", "annotations_uri": "s3://videos/pipeline.jsonl",
        "annotation_format": "jsonl", "encoder": str(tiny_clip_dir), "llm": str(tiny_llm_dir),
        "recipe": "demo", "num_frames": 8, "num_shards": 2, "val_fraction": 0.25,
        "work_uri": "s3://work/pipeline", "registered_model_name": "s3-champion",
        "package_bento": False,
    }  # fmt: skip
    run_local("finetune", params, tmp_path)
    champion = champion_summary("s3-champion")
    assert champion["checkpoint"].startswith("s3://work/pipeline/")
    keys = resolve("s3://work")[0].list("pipeline/")
    assert sum(k.endswith(".safetensors") and "/shard-" in k for k in keys) == 24
    assert any(k.startswith("pipeline/records/") and k.endswith("/train.jsonl") for k in keys)
    for part in ("checkpoint/model.safetensors", "eval/predictions.jsonl"):
        assert any(k.endswith(part) for k in keys), part
    # The master's log is kept beside the checkpoint (in the bucket), not only in KFP.
    assert any("/train-logs/videollm-" in k and k.endswith(".log") for k in keys)
