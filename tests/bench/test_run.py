"""``videollm benchmark`` end to end: published-format files → features → answers → metrics."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml
from local_http import serving

from videollm.bench.run import run_benchmark
from videollm.bench.suite import load_suite
from videollm.cli.main import main
from videollm.demo.run import COLOUR_QUESTION
from videollm.errors import ConfigError
from videollm.model.model_config import CheckpointConfig
from videollm.model.video_llm import VideoLLM
from videollm.train.loop import load_train_config, train
from videollm.video.paths import list_videos

COLOURS = ["red", "green", "blue"]


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


def _videos(colour_data) -> list[tuple[str, str]]:
    """(path under the videos folder, colour) of the validation videos."""
    rows = [json.loads(x) for x in (colour_data["records"] / "val.jsonl").read_text().splitlines()]
    files = dict(list_videos(colour_data["videos"]))
    return [
        (str(files[r["video"]].relative_to(colour_data["videos"])), r["conversations"][1]["value"])
        for r in rows
    ]


def _write_suite(tmp_path: Path, colour_data, judge_url: str | None = None) -> Path:
    """An MVBench task file and, with a judge, MSVD-QA question/answer files (real layouts)."""
    videos = _videos(colour_data)
    mc = [
        {
            "video": rel,
            "question": COLOUR_QUESTION,
            "candidates": COLOURS[i % 3 :] + COLOURS[: i % 3],
            "answer": colour,
        }
        for i, (rel, colour) in enumerate(videos)
    ]
    (tmp_path / "mvbench").mkdir()
    (tmp_path / "mvbench" / "colour.json").write_text(json.dumps(mc, indent=1))
    benchmarks = [
        {
            "name": "mc",
            "format": "mvbench",
            "annotations": "mvbench",
            "videos": str(colour_data["videos"]),
        }
    ]
    suite: dict[str, Any] = {"name": "colours", "benchmarks": benchmarks}
    if judge_url:
        # Video-ChatGPT's zero-shot QA layout: test_q.json + test_a.json paired by question_id.
        qs = [
            {
                "video_name": Path(rel).with_suffix("").as_posix(),
                "question_id": f"q{i}",
                "question": COLOUR_QUESTION,
            }
            for i, (rel, _) in enumerate(videos)
        ]
        ans = [{"answer": c, "type": 2, "question_id": f"q{i}"} for i, (_, c) in enumerate(videos)]
        (tmp_path / "test_q.json").write_text(json.dumps(qs))
        (tmp_path / "test_a.json").write_text(json.dumps(ans))
        benchmarks.append(
            {
                "name": "msvd",
                "format": "msvd_qa",
                "annotations": "test_q.json",
                "answers": "test_a.json",
                "videos": str(colour_data["videos"]),
            }
        )
        suite["judge"] = {"url": judge_url, "model": "judge-1", "backoff_s": 0.01}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


class _Judge(BaseHTTPRequestHandler):
    """An OpenAI-format judge: 'yes' when the prediction names the reference colour."""

    calls = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with _Judge.lock:
            _Judge.calls += 1
        text = body["messages"][-1]["content"]
        ref = re.search(r"Reference answer: (.*)", text).group(1).strip()
        pred = re.search(r"Predicted answer: (.*)", text).group(1)
        ok = ref.lower() in pred.lower()
        reply = f"{{'pred': '{'yes' if ok else 'no'}', 'score': {5 if ok else 1}}}"
        data = json.dumps(
            {
                "model": "judge-1-0125",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def test_trained_model_beats_untrained_and_the_judge_is_paid_once(
    checkpoints, colour_data, tmp_path
) -> None:
    with serving(_Judge) as url:
        suite = _write_suite(tmp_path, colour_data, judge_url=f"{url}/v1")
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
        calls = _Judge.calls
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
        assert _Judge.calls == calls  # every verdict came from the cache
    by = {k: {b["name"]: b for b in v["benchmarks"]} for k, v in results.items()}
    n = len(_videos(colour_data))
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
    suite = _write_suite(tmp_path, colour_data)
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
