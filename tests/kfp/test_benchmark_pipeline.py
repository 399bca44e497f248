"""The ``benchmark`` pipeline: its tasks called as functions (tier 1), then the whole pipeline
through ``kfp.local`` (tier 2), on two registered models of the coloured videos: a champion
that barely trained and a challenger that learned the colours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_suite import ColourJudge, colour_videos, write_colour_suite
from local_http import serving
from mlflow import MlflowClient

from videollm.cli.main import main
from videollm.errors import ConfigError, VideoLLMError
from videollm.kfp.bench_tasks import (
    compare_benchmarks,
    extract_benchmark,
    plan_benchmark,
    score_model,
)
from videollm.kfp.runner import run_local
from videollm.steps import run_train, training_run_of
from videollm.train.loop import load_train_config

EXPERIMENT = "bench-pipeline"
MODEL = "colour"


@pytest.fixture(scope="module")
def registry(colour_data, tiny_llm_dir, tmp_path_factory) -> dict[str, str]:
    """A tracking store where ``models:/colour@champion`` (version 1) barely trained and
    ``models:/colour/2`` learned the colours, each with its MLflow training run."""
    root = tmp_path_factory.mktemp("bench-registry")
    store = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", store)
        mp.setenv("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
        client = MlflowClient(store)
        client.create_registered_model(MODEL)
        for name, overrides in (("weak", ["train.epochs=1", "optim.lr=1e-8"]), ("strong", [])):
            flags = {
                "records": str(colour_data["records"]),
                "features": str(colour_data["features"]),
                "out": str(root / name),
                "model": {"llm": str(tiny_llm_dir)},
            }
            run_train(load_train_config("demo", overrides, flags=flags))
            run = training_run_of(root / name)
            client.create_model_version(MODEL, str(root / name), run_id=run)
        client.set_registered_model_alias(MODEL, "champion", "1")
    return {"store": store, "weak": str(root / "weak"), "strong": str(root / "strong")}


@pytest.fixture
def tracking(registry, monkeypatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry["store"])
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
    return MlflowClient(registry["store"])


MODELS = {"champion": f"models:/{MODEL}@champion", "challenger": f"models:/{MODEL}/2"}


def test_the_plan_resolves_both_models_and_they_share_one_extraction(
    tracking, colour_data, tiny_clip_dir, tmp_path
):
    suite = str(write_colour_suite(tmp_path, colour_data))
    [settings] = plan_benchmark(suite, [], MODELS)
    assert settings["encoder"] == str(tiny_clip_dir) and settings["num_frames"] == 8
    assert settings["pooling"] == "spatiotemporal" and settings["layer"] == -2

    with pytest.raises(ConfigError, match="challenger_uri: required"):
        plan_benchmark(suite, [], {**MODELS, "challenger": ""})
    with pytest.raises(VideoLLMError, match="cannot resolve models:/colour@nope"):
        plan_benchmark(suite, [], {**MODELS, "challenger": "models:/colour@nope"})
    with pytest.raises(ConfigError, match=r"benchmarks\[0\]\.format: 'mmvbench'"):
        plan_benchmark(suite, ["benchmarks=[{name: mc, format: mmvbench, annotations: "
                              "mvbench, videos: .}]"], MODELS)  # fmt: skip


def test_scoring_reads_only_the_features_the_extract_task_made(tracking, colour_data, tmp_path):
    suite = str(write_colour_suite(tmp_path, colour_data))
    root = str(tmp_path / "features")
    n = len(colour_videos(colour_data))
    before = score_model(suite, [], MODELS["challenger"], "challenger", str(tmp_path / "a"), root)
    # No features yet: every question skipped, nothing extracted, and no score (not 0%).
    assert before.metrics == {"bench/mc/count": 0.0}
    data = json.loads((tmp_path / "a" / "results.json").read_text())
    assert data["score"] is None and data["benchmarks"][0]["value"] is None
    assert data["benchmarks"][0]["n"] == 0 and data["benchmarks"][0]["skipped"] == n
    assert not Path(root).exists()

    [settings] = plan_benchmark(suite, [], MODELS)
    made = extract_benchmark(suite, [], settings, root)
    assert made.metrics == {"videos": n, "with_features": n, "failed": 0}
    after = score_model(suite, [], MODELS["challenger"], "challenger", str(tmp_path / "b"), root)
    assert after.metrics["bench/mc/accuracy"] >= 0.8 and "| mc | mvbench |" in after.report

    with pytest.raises(ConfigError, match=r"eval_gpus: 0 \(CPU\) or 1"):
        score_model(suite, [], MODELS["challenger"], "x", str(tmp_path / "c"), root, gpus=2)
    compared = compare_benchmarks(
        {"champion": str(tmp_path / "a"), "challenger": str(tmp_path / "b")}, str(tmp_path)
    )
    assert "challenger_minus_champion" not in compared.metrics  # the champion scored nothing
    assert compared.metrics["challenger/colours/score"] == after.metrics["bench/colours/score"]
    assert (tmp_path / "comparison.md").read_text() == compared.report


def _outputs(root: Path, task: str) -> dict:
    [run_dir] = root.iterdir()
    return json.loads((run_dir / task / "executor_output.json").read_text())


def _metrics(root: Path, task: str) -> dict[str, float]:
    return _outputs(root, task)["artifacts"]["metrics"]["artifacts"][0]["metadata"]


@pytest.mark.slow
def test_the_pipeline_compares_champion_and_challenger_and_select_ranks_by_the_suite(
    tracking, registry, colour_data, tmp_path, capsys
):
    with serving(ColourJudge) as url:
        suite = write_colour_suite(tmp_path, colour_data, judge_url="http://unused.invalid/v1")
        params = {
            "suite_uri": str(suite),
            "challenger_uri": MODELS["challenger"],
            "champion_uri": MODELS["champion"],
            # The judge named in the suite is replaced, as on a cluster with a vLLM judge.
            "suite_overrides": [f"judge.url={url}/v1"],
            "experiment": "benchmarks",  # the training runs are in EXPERIMENT
            "eval_gpus": "0",
        }
        done = run_local("benchmark", params, tmp_path / "run")
        calls = ColourJudge.calls
    root = done.pipeline_root
    run_dir = next(root.iterdir())
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith("for-loop")) == [
        "for-loop-1-iteration-0"  # both models extract alike: one extract task
    ]
    n = len(colour_videos(colour_data))
    assert _metrics(root, "for-loop-1-iteration-0/extract-benchmark")["with_features"] == n
    assert calls > 0

    compared = _metrics(root, "compare-benchmarks")
    assert compared["challenger_colours_score"] > compared["champion_colours_score"]
    assert compared["challenger_mc_accuracy"] >= 0.8
    assert compared["challenger_minus_champion"] == pytest.approx(
        compared["challenger_colours_score"] - compared["champion_colours_score"]
    )
    report = (run_dir / "compare-benchmarks" / "report").read_text()
    assert "| benchmark | metric | champion | challenger |" in report
    assert "| msvd | accuracy |" in report
    comparison = Path(_outputs(root, "compare-benchmarks")["parameterValues"]["Output"])
    assert comparison.read_text() == report

    # One MLflow run per model; each model's suite score also lands on its training run.
    runs = tracking.search_runs(
        [tracking.get_experiment_by_name("benchmarks").experiment_id],
        "tags.`videollm.suite` = 'colours'",
    )
    assert len(runs) == 2
    for version in ("1", "2"):
        train_run = tracking.get_run(tracking.get_model_version(MODEL, version).run_id)
        assert "bench/colours/score" in train_run.data.metrics

    # Side by side in the terminal, best first: one row per model, named after it.
    capsys.readouterr()
    compare = ["runs", "compare", "--experiment", "benchmarks", "--step", "benchmark"]
    assert main([*compare, "--metrics", "bench/colours/score", "bench/mc/accuracy"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "benchmark-" in line]
    assert len(rows) == 2
    assert "benchmark-colour-v2-colours-" in rows[0]
    assert "benchmark-colour-champion-colours-" in rows[1]

    # The challenger scored higher on the suite: select promotes it by that metric.
    select = ["select", "--experiment", EXPERIMENT, "--model-name", MODEL]
    assert main([*select, "--metric", "bench/colours/score"]) == 0
    champion = tracking.get_model_version_by_alias(MODEL, "champion")
    assert champion.source == registry["strong"]
