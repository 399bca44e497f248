"""select_champion and compare_runs against a real MLflow tracking server and registry."""

from __future__ import annotations

import time
import uuid

import pytest
from mlflow.tracking import MlflowClient

from videollm.errors import TrackingError
from videollm.tracking import (
    CHECKPOINT_TAG,
    compare_runs,
    format_table,
    log_metrics,
    select_champion,
    step_run,
)

METRIC = "val/exact_match"


def _finished_run(name: str, value: float | None, checkpoint: bool = True, lr: float = 1e-4) -> str:
    tags = {CHECKPOINT_TAG: f"s3://ckpt/{name}"} if checkpoint else {}
    with step_run(name, {"optim": {"lr": lr}}, tags=tags) as run:
        metrics = {"train/loss": 1.0 - (value or 0.0)}
        if value is not None:
            metrics[METRIC] = value
        log_metrics(metrics)
    return run.info.run_id


def _model() -> str:
    return f"videollm-{uuid.uuid4().hex[:8]}"


def test_select_picks_best_and_never_demotes(mlflow_server: str, mlflow_env: str) -> None:
    client = MlflowClient(mlflow_server)
    model = _model()
    _finished_run("a", 0.40)
    best = _finished_run("b", 0.80)
    _finished_run("c", 0.60)
    _finished_run("no-metric", None)
    _finished_run("no-ckpt", 0.99, checkpoint=False)  # cannot be served, so not a candidate

    first = select_champion(mlflow_env, METRIC, "max", model)
    assert first.best is not None and first.best.run_id == best
    assert first.promoted and first.previous_version is None
    assert [c.value for c in first.top] == [0.80, 0.60, 0.40]
    champion = client.get_model_version_by_alias(model, "champion")
    assert (champion.version, champion.run_id, champion.source) == ("1", best, "s3://ckpt/b")

    # Same runs again: nothing new registered, alias unchanged.
    again = select_champion(mlflow_env, METRIC, "max", model)
    assert not again.promoted and again.version == "1"
    assert len(client.search_model_versions(f"name = '{model}'")) == 1

    # A worse run in a *fresh* experiment competes alone: registered, but not promoted.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_EXPERIMENT_NAME", f"{mlflow_env}-later")
        worse = _finished_run("d", 0.50)
        later = select_champion(f"{mlflow_env}-later", METRIC, "max", model)
        repeat = select_champion(f"{mlflow_env}-later", METRIC, "max", model)
    assert repeat.version == "2" and not repeat.promoted  # v2 reused, not registered again
    assert len(client.search_model_versions(f"name = '{model}'")) == 2
    assert later.best is not None and later.best.run_id == worse
    assert not later.promoted
    assert later.previous_version == "1" and later.previous_value == 0.80
    assert later.version == "2" and later.champion_version == "1"
    assert client.get_model_version_by_alias(model, "champion").run_id == best

    # A better one later takes over.
    top = _finished_run("e", 0.90)
    final = select_champion(mlflow_env, METRIC, "max", model)
    assert final.promoted and final.previous_version == "1"
    assert client.get_model_version_by_alias(model, "champion").run_id == top
    table = final.table()
    assert table.splitlines()[0].split()[:4] == ["rank", "run", "run_id", METRIC]
    assert "s3://ckpt/e" in table.splitlines()[2]


def test_select_mode_min(mlflow_server: str, mlflow_env: str) -> None:
    model = _model()
    _finished_run("a", 0.30)
    lowest = _finished_run("b", 0.10)
    _finished_run("c", 0.20)
    result = select_champion(mlflow_env, METRIC, "min", model)
    assert result.best is not None and result.best.run_id == lowest and result.promoted
    champion = MlflowClient(mlflow_server).get_model_version_by_alias(model, "champion")
    assert champion.run_id == lowest


def test_select_without_candidates(mlflow_env: str) -> None:
    _finished_run("a", None)
    result = select_champion(mlflow_env, METRIC, "max", _model())
    assert result.best is None and not result.promoted and result.version is None


def test_select_unknown_experiment_and_unreachable(
    mlflow_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(TrackingError, match="no experiment named"):
        select_champion("does-not-exist", METRIC, "max", _model())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    start = time.monotonic()
    with pytest.raises(TrackingError, match=r"127\.0\.0\.1:9"):
        select_champion(mlflow_env, METRIC, "max", _model())
    assert time.monotonic() - start < 10


def test_compare_runs_table(mlflow_env: str) -> None:
    _finished_run("slow", 0.2, lr=1e-5)
    _finished_run("fast", 0.7, lr=1e-3)
    table = compare_runs(mlflow_env, metrics=[METRIC, "train/loss"])
    lines = table.splitlines()
    assert lines[0].split() == ["run", "run_id", "step", "optim.lr", METRIC, "train/loss"]
    assert lines[2].startswith("fast") and lines[3].startswith("slow")  # best first
    assert "0.001" in lines[2]
    # Auto columns: the param that varies, eval metrics first; loss sorts ascending.
    auto = compare_runs(mlflow_env, metrics=["train/loss"]).splitlines()
    assert "optim.lr" in auto[0] and auto[2].startswith("fast")
    assert compare_runs(mlflow_env, max_runs=1).count("\n") == 2


def test_format_table_aligns() -> None:
    text = format_table([{"name": "a", "x": 1.23456}, {"name": "bbb", "x": None}])
    assert text.splitlines() == ["name      x", "----  -----", "a     1.235", "bbb       -"]
    assert format_table([]) == "(no rows)"
