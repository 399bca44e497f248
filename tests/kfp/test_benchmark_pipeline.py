"""The ``benchmark`` pipeline: its tasks called as functions (tier 1), then the whole pipeline
through ``kfp.local`` (tier 2), on two registered models of the coloured videos: a champion
that barely trained and a challenger that learned the colours."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from bench_suite import ColourJudge, colour_videos, write_bounded_suite, write_colour_suite
from kfp_outputs import task_metrics, task_outputs
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
from videollm.kfp.work_dirs import benchmark_features_root
from videollm.model.model_config import CONFIG_FILE
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


def test_the_plan_pins_both_models_and_they_share_one_extraction(
    tracking, colour_data, tiny_clip_dir, tmp_path
):
    suite = str(write_colour_suite(tmp_path, colour_data))
    plan = plan_benchmark(suite, [], MODELS)
    # The alias is pinned: the scoring tasks score this version even if it moves meanwhile.
    assert plan.models == {"champion": f"models:/{MODEL}/1", "challenger": f"models:/{MODEL}/2"}
    [settings] = plan.settings
    assert settings["encoder"] == str(tiny_clip_dir) and settings["num_frames"] == 8
    assert settings["pooling"] == "spatiotemporal" and settings["layer"] == -2

    with pytest.raises(ConfigError, match="challenger_uri: required"):
        plan_benchmark(suite, [], {**MODELS, "challenger": ""})
    with pytest.raises(VideoLLMError, match="cannot resolve models:/colour@nope"):
        plan_benchmark(suite, [], {**MODELS, "challenger": "models:/colour@nope"})
    with pytest.raises(ConfigError, match=r"benchmarks\[0\]\.format: 'mmvbench'"):
        plan_benchmark(suite, ["benchmarks=[{name: mc, format: mmvbench, annotations: "
                              "mvbench, videos: .}]"], MODELS)  # fmt: skip
    with pytest.raises(ConfigError, match=r"eval_gpus: 0 \(CPU\) or 1"):
        plan_benchmark(suite, [], MODELS, gpus="2")  # before any extraction


def _through_kfp(settings: dict) -> dict:
    """What a ParallelFor item looks like in the task: a protobuf Struct, numbers as floats."""
    return json.loads(json.dumps(settings), parse_int=float)


def test_each_model_scores_from_the_features_its_settings_made(
    tracking, registry, colour_data, tmp_path
):
    suite = str(write_colour_suite(tmp_path, colour_data))
    # A second checkpoint of the same weights whose features sample 4 frames, not 8.
    four = tmp_path / "four-frames"
    shutil.copytree(registry["strong"], four)
    config = json.loads((four / CONFIG_FILE).read_text())
    config["extract"]["num_frames"] = 4
    (four / CONFIG_FILE).write_text(json.dumps(config))
    models = {"champion": str(four), "challenger": MODELS["challenger"]}
    work = str(tmp_path / "work")
    roots = [benchmark_features_root(work)]
    with pytest.raises(ConfigError, match=r"no features of .* no extract task ran"):
        score_model(suite, [], models["challenger"], "challenger", roots, work, "r1")

    plan = plan_benchmark(suite, [], models)
    assert sorted(s["num_frames"] for s in plan.settings) == [4, 8]
    n = len(colour_videos(colour_data))
    for settings in plan.settings:
        made = extract_benchmark(suite, [], _through_kfp(settings), work)
        assert made.metrics == {"videos": n, "with_features": n, "failed": 0}
    assert len(list(Path(roots[0]).iterdir())) == 2  # one features folder per settings
    results = {}
    for label, model in plan.models.items():
        done = score_model(suite, [], model, label, roots, work, "r1")
        assert done.uri == f"{work}/r1/benchmark/{label}"
        assert done.metrics["bench/mc/count"] == n
        results[label] = done.uri
    frames = {
        json.loads(line)["frames"]
        for root in Path(roots[0]).iterdir()
        for line in (root / "manifest.jsonl").read_text().splitlines()
    }
    assert frames == {4, 8}
    compared = compare_benchmarks(results, work, "r1")
    assert compared.uri == f"{work}/r1/benchmark/comparison.md"
    assert Path(compared.uri).read_text() == compared.report
    assert compared.metrics["challenger/mc/accuracy"] >= 0.8
    assert compared.metrics["challenger_minus_champion"] == pytest.approx(
        compared.metrics["challenger/colours/score"] - compared.metrics["champion/colours/score"]
    )


def test_the_extract_and_scoring_tasks_agree_on_clip_features(tracking, colour_data, tmp_path):
    # MVBench's cut tasks: the extract task makes one clip per question, the scoring task
    # finds each by the same id.
    suite = str(write_bounded_suite(tmp_path, colour_data))
    plan = plan_benchmark(suite, [], MODELS)
    work = str(tmp_path / "work")
    roots = [benchmark_features_root(work)]
    n = len(colour_videos(colour_data))
    [settings] = plan.settings
    made = extract_benchmark(suite, [], _through_kfp(settings), work)
    assert made.metrics == {"videos": n, "with_features": n, "failed": 0}
    [folder] = Path(roots[0]).iterdir()
    assert all(f.stem.endswith("@200-600") for f in folder.glob("*.safetensors"))
    done = score_model(suite, [], plan.models["challenger"], "challenger", roots, work, "r2")
    assert done.metrics["bench/seq/count"] == n and done.metrics["bench/parts/score"] >= 0.8


def test_a_model_scored_again_in_a_later_run_costs_no_judge_call(tracking, colour_data, tmp_path):
    work = str(tmp_path / "work")
    roots = [benchmark_features_root(work)]
    with serving(ColourJudge) as url:
        suite = str(write_colour_suite(tmp_path, colour_data, judge_url=f"{url}/v1"))
        [settings] = plan_benchmark(suite, [], MODELS).settings
        extract_benchmark(suite, [], settings, work)
        before = ColourJudge.calls
        first = score_model(suite, [], MODELS["challenger"], "challenger", roots, work, "r1")
        paid = ColourJudge.calls - before
        again = score_model(suite, [], MODELS["challenger"], "challenger", roots, work, "r2")
        assert ColourJudge.calls - before == paid > 0  # the second run asked nothing
    assert again.metrics == first.metrics and again.uri != first.uri
    assert (Path(work) / "benchmark-judge" / "colours-challenger.jsonl").is_file()


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
            "suite_overrides": json.dumps([f"judge.url={url}/v1"]),
            "experiment": "benchmarks",  # the training runs are in EXPERIMENT
            "eval_gpus": "0",
        }
        argv = ["pipeline", "run", "--local", "--pipeline", "benchmark"]
        argv += ["--out", str(tmp_path / "run")]
        assert main([*argv, *(f"--param={k}={v}" for k, v in params.items())]) == 0
        calls = ColourJudge.calls
    printed = capsys.readouterr().out
    root = tmp_path / "run" / "kfp"
    # It registers nothing: the summary lists its reports, not the registry's champion.
    assert "report:" in printed and "compare-benchmarks/report" in printed
    assert "champion:" not in printed
    run_dir = next(root.iterdir())
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith("for-loop")) == [
        "for-loop-1-iteration-0"  # both models extract alike: one extract task
    ]
    n = len(colour_videos(colour_data))
    assert task_metrics(root, "for-loop-1-iteration-0/extract-benchmark")["with_features"] == n
    assert calls > 0
    # The verdicts are kept across runs, one file per model (the two score at once).
    judged = tmp_path / "run" / "work" / "benchmark-judge"
    assert sorted(p.name for p in judged.iterdir()) == [
        "colours-challenger.jsonl", "colours-champion.jsonl",
    ]  # fmt: skip

    compared = task_metrics(root, "compare-benchmarks")
    assert compared["challenger_colours_score"] > compared["champion_colours_score"]
    assert compared["challenger_mc_accuracy"] >= 0.8
    assert compared["challenger_minus_champion"] == pytest.approx(
        compared["challenger_colours_score"] - compared["champion_colours_score"]
    )
    report = (run_dir / "compare-benchmarks" / "report").read_text()
    assert "| benchmark | metric | champion | challenger |" in report
    assert "| msvd | accuracy |" in report
    comparison = Path(task_outputs(root, "compare-benchmarks")["parameterValues"]["Output"])
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
    assert "benchmark-colour-v1-colours-" in rows[1]  # the alias, pinned by the plan

    # The challenger scored higher on the suite: select promotes it by that metric.
    select = ["select", "--experiment", EXPERIMENT, "--model-name", MODEL]
    assert main([*select, "--metric", "bench/colours/score"]) == 0
    champion = tracking.get_model_version_by_alias(MODEL, "champion")
    assert champion.source == registry["strong"]
