"""step_run and log helpers against a real ``mlflow server`` (and a local SQLite store)."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from videollm.errors import TrackingError
from videollm.tracking import (
    STEP_TAG,
    log_artifact,
    log_dataset,
    log_metrics,
    log_text,
    step_run,
    tracking_uri,
)


def _runs(client: MlflowClient, experiment: str) -> list:
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id])


def test_step_run_creates_run_with_params_tag_metrics_and_artifacts(
    mlflow_server: str, mlflow_env: str, tmp_path: Path
) -> None:
    (tmp_path / "report.txt").write_text("ok")
    config = {"optim": {"lr": 2e-4, "epochs": 1}, "aws_secret_access_key": "hunter2"}
    with step_run("train", config, tags={"team": "a"}) as run:
        log_metrics({"val/acc": 0.5, "not_a_number": "x"}, step=3)
        log_artifact(tmp_path / "report.txt", artifact_path="reports")
        log_text("# samples", "reports/samples.md")
    client = MlflowClient(mlflow_server)
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params["optim.lr"] == "0.0002"
    assert got.data.params["optim.epochs"] == "1"
    assert got.data.params["aws_secret_access_key"] == "***"  # never the secret itself
    assert got.data.tags[STEP_TAG] == "train" and got.data.tags["team"] == "a"
    assert got.data.metrics == {"val/acc": 0.5}
    assert client.get_experiment(got.info.experiment_id).name == mlflow_env
    files = {f.path for f in client.list_artifacts(run.info.run_id, "reports")}
    assert files == {"reports/report.txt", "reports/samples.md"}


def test_failed_step_marks_run_failed(mlflow_server: str, mlflow_env: str) -> None:
    with pytest.raises(RuntimeError), step_run("extract", {}) as run:
        raise RuntimeError("boom")
    assert MlflowClient(mlflow_server).get_run(run.info.run_id).info.status == "FAILED"


def test_injected_mlflow_run_id_is_joined(
    mlflow_server: str, mlflow_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = MlflowClient(mlflow_server)
    exp_id = client.create_experiment(mlflow_env)
    existing = client.create_run(exp_id, run_name="kfp-task")
    client.log_param(existing.info.run_id, "kfp.task", "evaluate")
    monkeypatch.setenv("MLFLOW_RUN_ID", existing.info.run_id)
    # Same param with the same value, plus a new one: a rejoin must not fail on immutability.
    with step_run("evaluate", {"kfp": {"task": "evaluate"}, "batch": 4}) as run:
        log_metrics({"val/exact_match": 0.75})
    assert run.info.run_id == existing.info.run_id
    assert len(_runs(client, mlflow_env)) == 1  # no new run
    got = client.get_run(existing.info.run_id)
    assert got.data.metrics["val/exact_match"] == 0.75
    assert got.data.params == {"kfp.task": "evaluate", "batch": "4"}
    assert got.data.tags[STEP_TAG] == "evaluate"
    assert os.environ["MLFLOW_RUN_ID"] == existing.info.run_id  # left for later steps
    # A step opened inside the joined run nests under it instead of re-joining it.
    with step_run("evaluate", {}) as outer, step_run("judge", {}) as inner:
        pass
    assert outer.info.run_id == existing.info.run_id
    assert client.get_run(inner.info.run_id).data.tags["mlflow.parentRunId"] == outer.info.run_id


def test_parent_run_env_nests_child(
    mlflow_server: str, mlflow_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = MlflowClient(mlflow_server)
    exp_id = client.create_experiment(mlflow_env)
    parent = client.create_run(exp_id, run_name="pipeline")
    monkeypatch.setenv("VIDEOLLM_PARENT_RUN_ID", parent.info.run_id)
    # The experiment argument is ignored: a child lives in its parent's experiment.
    with step_run("extract", {"a": 1}, experiment="elsewhere") as child:
        pass
    got = client.get_run(child.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert got.info.experiment_id == exp_id
    assert got.data.tags["mlflow.runName"].startswith("extract-")


def test_step_run_inside_step_run_nests(mlflow_server: str, mlflow_env: str) -> None:
    with step_run("pipeline", {}) as outer, step_run("convert", {}) as inner:
        pass
    got = MlflowClient(mlflow_server).get_run(inner.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == outer.info.run_id


def test_log_dataset_shows_in_run_inputs(mlflow_server: str, mlflow_env: str) -> None:
    with step_run("train", {}) as run:
        log_dataset("minio://videos/records/train.jsonl", "records/train", "a" * 64, "training")
        log_dataset("s3://videos/features", "features", None, "features")
    inputs = MlflowClient(mlflow_server).get_run(run.info.run_id).inputs.dataset_inputs
    by_name = {d.dataset.name: d for d in inputs}
    train = by_name["records/train"]
    assert train.dataset.source_type == "s3"
    assert "s3://videos/records/train.jsonl" in train.dataset.source
    assert train.dataset.digest == "a" * 36  # cut to MLflow's column size
    assert {t.key: t.value for t in train.tags}["mlflow.data.context"] == "training"
    assert by_name["features"].dataset.digest  # MLflow computed one


def test_unknown_dataset_scheme_is_a_tracking_error(mlflow_env: str) -> None:
    with step_run("train", {}), pytest.raises(TrackingError, match="weird://x"):
        log_dataset("weird://x", "x", None, "training")


def test_unreachable_server_fails_fast_naming_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:pw@127.0.0.1:9")
    start = time.monotonic()
    with pytest.raises(TrackingError) as info, step_run("train", {}):
        pass
    assert time.monotonic() - start < 10
    assert "http://127.0.0.1:9" in str(info.value)
    assert "pw" not in str(info.value)


def test_local_default_is_sqlite_under_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "VIDEOLLM_PARENT_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "local-demo")
    monkeypatch.chdir(tmp_path)
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    with step_run("extract", {"n": 1}) as run:
        log_text("hello", "notes/hello.txt")
    assert (tmp_path / "mlflow.db").is_file()
    client = MlflowClient(tracking_uri())
    got = client.get_run(run.info.run_id)
    assert got.data.params == {"n": "1"}
    artifacts = tmp_path.resolve() / "mlartifacts" / "local-demo" / run.info.run_id / "artifacts"
    assert got.info.artifact_uri == artifacts.as_uri()
    assert (artifacts / "notes" / "hello.txt").read_text() == "hello"
    assert not (tmp_path / "mlruns").exists()


_ROUNDS = 5


def _log_same_dataset(uri: str, barrier: Any, queue: Any) -> None:
    """One of several parallel tasks: its own run, then the shared dataset at the same moment."""
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        with step_run("extract", {}) as run:
            for k in range(_ROUNDS):  # Several rounds: each is a fresh race for a new row.
                barrier.wait(timeout=60)
                log_dataset(f"s3://videos/{k}", f"videos-{k}", "b" * 64, "extract")
        queue.put(run.info.run_id)
    except Exception as err:  # Reported to the test, which fails on it.
        barrier.abort()  # The others stop waiting for this one.
        queue.put(f"error: {err}")


def test_parallel_runs_logging_one_dataset_all_link_it(tmp_path: Path) -> None:
    """Extract shards log the same videos dataset at once; none may lose the insert race."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        with step_run("setup", {}):  # Create the tables first, as run_local does.
            pass
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    ctx = multiprocessing.get_context("spawn")
    n = 6
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_log_same_dataset, args=(uri, barrier, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert not [r for r in results if r.startswith("error")], results
    client = MlflowClient(uri)
    linked = [client.get_run(r).inputs.dataset_inputs for r in results]
    expected = {(f"videos-{k}", "b" * 36) for k in range(_ROUNDS)}
    assert all({(d.dataset.name, d.dataset.digest) for d in run} == expected for run in linked)
    # One row per dataset, shared by every run: the losers linked the winner's row.
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        assert db.execute("SELECT COUNT(*) FROM datasets").fetchone() == (_ROUNDS,)
