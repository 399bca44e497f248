"""``videollm benchmark`` end to end: published-format files → features → answers → metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import pytest
import yaml
from bench_suite import ColourJudge, colour_videos, write_bounded_suite, write_colour_suite
from fake_video_endpoint import FakeVideoLLM, endpoint_handler
from local_http import serving

from videollm.bench.report import results_json
from videollm.bench.run import run_benchmark
from videollm.bench.score import BenchmarkResult, suite_score
from videollm.bench.suite import load_suite
from videollm.cli.main import main
from videollm.errors import ConfigError
from videollm.features.store import read_metadata
from videollm.model.model_config import CheckpointConfig
from videollm.model.video_llm import VideoLLM
from videollm.train.loop import load_train_config, train


@pytest.fixture(scope="module")
def checkpoints(colour_data, tiny_llm_dir, tmp_path_factory) -> dict[str, Path]:
    """The demo recipe trained on the colour videos, and the same model untrained."""
    root = tmp_path_factory.mktemp("bench-ckpt")
    flags = {
        "records": str(colour_data["records"]),
        "features": str(colour_data["features"]),
        "out": str(root / "trained"),
        "model": {"llm": str(tiny_llm_dir)},
    }
    train(load_train_config("demo", [], flags=flags))
    cfg = CheckpointConfig.load(root / "trained")
    VideoLLM.build(cfg, device="cpu").save_checkpoint(root / "untrained")
    return {"trained": root / "trained", "untrained": root / "untrained"}


def test_trained_model_beats_untrained_and_the_judge_is_paid_once(
    checkpoints, colour_data, tmp_path
) -> None:
    with serving(ColourJudge) as url:
        suite = write_colour_suite(tmp_path, colour_data, judge_url=f"{url}/v1")
        root = tmp_path / "features"
        results = {}
        for name, ckpt in checkpoints.items():
            cfg = load_suite(
                suite,
                flags={
                    "checkpoint": str(ckpt),
                    "out": str(tmp_path / name),
                    "features_root": str(root),
                },
            )
            results[name] = run_benchmark(cfg)
        calls = ColourJudge.calls
        again = run_benchmark(
            load_suite(
                suite,
                flags={
                    "checkpoint": str(checkpoints["trained"]),
                    "out": str(tmp_path / "trained"),
                    "features_root": str(root),
                },
            )
        )
        assert ColourJudge.calls == calls  # every verdict came from the cache
    by = {k: {b["name"]: b for b in v["benchmarks"]} for k, v in results.items()}
    n = len(colour_videos(colour_data))
    assert by["trained"]["mc"]["n"] == n and by["trained"]["msvd"]["n"] == n
    assert by["trained"]["mc"]["value"] > by["untrained"]["mc"]["value"]
    assert by["trained"]["mc"]["value"] >= 0.8
    assert by["trained"]["msvd"]["value"] > by["untrained"]["msvd"]["value"]
    assert by["trained"]["msvd"]["judge"]["served_model"] == "judge-1-0125"
    assert again["score"] == results["trained"]["score"]
    assert results["trained"]["score"] > results["untrained"]["score"]
    # Features were extracted once per videos folder and encoder, and reused by both models.
    assert len([p for p in root.iterdir() if p.is_dir()]) == 1
    md = (tmp_path / "trained" / "results.md").read_text()
    assert "| mc | mvbench | accuracy |" in md and "judge-1 (judge-1-0125)" in md
    preds = (tmp_path / "trained" / "mc" / "predictions.jsonl").read_text().splitlines()
    assert len(preds) == n and "answer_index" in json.loads(preds[0])


def test_cli_runs_a_multiple_choice_suite_and_refuses_a_judged_one_without_judge(
    checkpoints, colour_data, tmp_path, capsys
) -> None:
    suite = write_colour_suite(tmp_path, colour_data)
    out = tmp_path / "out"
    rc = main(
        [
            "benchmark",
            "--suite",
            str(suite),
            "--checkpoint",
            str(checkpoints["trained"]),
            "--out",
            str(out),
            "--features-root",
            str(tmp_path / "f"),
        ]
    )
    assert rc == 0
    assert "Benchmark suite `colours`" in capsys.readouterr().out
    data = json.loads((out / "results.json").read_text())
    assert data["benchmarks"][0]["metrics"]["accuracy/colour"] == data["score"]
    text = yaml.safe_load(suite.read_text())
    text["benchmarks"].append(
        {
            "name": "gen",
            "format": "vcgbench_generic",
            "annotations": "mvbench/colour.json",
            "videos": ".",
        }
    )
    suite.write_text(yaml.safe_dump(text))
    with pytest.raises(ConfigError, match=r"judge\.url: benchmark 'gen'"):
        load_suite(suite, flags={"checkpoint": "x", "out": str(out)})
    with pytest.raises(ConfigError, match="exactly one model"):
        load_suite(suite, flags={"out": str(out)})


def test_a_served_model_is_benchmarked_through_its_endpoint(colour_data, tmp_path) -> None:
    fake = FakeVideoLLM(wrong_for="blue")  # answers the colour, except "purple" for blue
    suite = write_colour_suite(tmp_path, colour_data)
    with serving(endpoint_handler(fake)) as url:
        fake.url = f"{url}/v1"
        argv = ["benchmark", "--suite", str(suite), "--endpoint", fake.url]
        argv += ["--model", "colour-model", "--out", str(tmp_path / "out")]
        assert main(argv) == 0
    videos = colour_videos(colour_data)
    blue = sum(colour == "blue" for _, colour in videos)
    [mc] = json.loads((tmp_path / "out" / "results.json").read_text())["benchmarks"]
    assert mc["n"] == len(videos) == len(fake.requests)
    # "purple" names no option: wrong, and counted as unparsed; the others are parsed back.
    assert mc["metrics"]["unparsed"] == blue
    assert mc["value"] == pytest.approx((len(videos) - blue) / len(videos))
    text = fake.requests[0]["body"]["messages"][0]["content"][1]["text"]
    assert "Options:" in text and "(A)" in text and "(C)" in text
    [run] = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`videollm.model` = 'colour-model @ {fake.url}'",
        output_format="list",
    )
    assert run.data.tags["mlflow.runName"].startswith("benchmark-colour-model-colours-")
    assert run.data.metrics["bench/mc/accuracy"] == mc["value"]


def test_a_question_about_part_of_a_video_is_answered_from_that_part(
    checkpoints, colour_data, tmp_path
) -> None:
    suite = write_bounded_suite(tmp_path, colour_data)
    n = len(colour_videos(colour_data))
    flags = {"checkpoint": str(checkpoints["trained"]), "out": str(tmp_path / "out"),
             "features_root": str(tmp_path / "f")}  # fmt: skip
    data = run_benchmark(load_suite(suite, flags=flags))
    assert data["benchmarks"][0]["n"] == n and data["score"] >= 0.8
    [features] = [p for p in (tmp_path / "f").iterdir() if p.is_dir()]
    files = sorted(features.glob("*.safetensors"))
    assert len(files) == n and all(f.stem.endswith("@200-600") for f in files)
    meta = read_metadata(files[0])
    # 16 frames at 15 fps: 0.2-0.6 s is frames 3 to 9, 7 frames (8 asked for).
    assert json.loads(meta["span_s"]) == [0.2, 0.6] and meta["frames"] == "7"

    # A copy whose videos are already cut: the whole file is the part.
    (tmp_path / "cut").mkdir()
    cut = write_bounded_suite(tmp_path / "cut", colour_data, bounds=False)
    run_benchmark(load_suite(cut, flags=flags | {"out": str(tmp_path / "out2")}))
    [features] = [p for p in (tmp_path / "f").iterdir() if p.is_dir() and p != features]
    assert not [f for f in features.glob("*.safetensors") if "@" in f.stem]
    assert read_metadata(next(features.glob("*.safetensors")))["frames"] == "8"


def test_suite_names_and_paths(colour_data, tmp_path, monkeypatch) -> None:
    suite = write_colour_suite(tmp_path, colour_data)
    text = yaml.safe_load(suite.read_text())
    text["benchmarks"][0]["videos"] = "videos"  # relative to the suite file
    (tmp_path / "videos").mkdir()
    suite.write_text(yaml.safe_dump(text))
    monkeypatch.chdir(tmp_path / "mvbench")
    cfg = load_suite(suite, flags={"checkpoint": "x", "out": "o"})
    # Absolute: the folder is part of the features' key, and two projects' "videos" differ.
    assert cfg.benchmarks[0].videos == str((tmp_path / "videos").resolve())
    with pytest.raises(ConfigError, match="'mc' is also the suite's name"):
        load_suite(suite, ["name=mc"], flags={"checkpoint": "x", "out": "o"})
    with pytest.raises(ConfigError, match="got checkpoint=x, model_uri=models:/m/1"):
        load_suite(suite, flags={"checkpoint": "x", "model_uri": "models:/m/1", "out": "o"})


def test_a_suite_with_a_benchmark_without_value_has_no_score() -> None:
    done = BenchmarkResult("mc", "mvbench", "accuracy", 4, {"accuracy": 0.5})
    score = BenchmarkResult("gen", "vcgbench_generic", "score", 4, {"score": 4.0})
    nothing = BenchmarkResult("msvd", "msvd_qa", "accuracy", 0, {"count": 0.0})
    assert suite_score([done, score]) == pytest.approx((0.5 + 0.8) / 2)
    assert math.isnan(suite_score([done, nothing]))
    assert results_json("s", "m", [done, nothing])["score"] is None
