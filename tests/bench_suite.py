"""A benchmark suite in the published layouts over the coloured test videos, and a judge.

``write_colour_suite`` writes an MVBench task file (and, with a judge, MSVD-QA question and
answer files) asking the colour of the validation videos; ``ColourJudge`` is an OpenAI-format
judge that says yes when the prediction names the reference colour.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import yaml

from videollm.demo.run import COLOUR_QUESTION
from videollm.video.paths import list_videos

COLOURS = ["red", "green", "blue"]


def colour_videos(colour_data) -> list[tuple[str, str]]:
    """(path under the videos folder, colour) of the validation videos."""
    rows = [json.loads(x) for x in (colour_data["records"] / "val.jsonl").read_text().splitlines()]
    files = dict(list_videos(colour_data["videos"]))
    return [
        (str(files[r["video"]].relative_to(colour_data["videos"])), r["conversations"][1]["value"])
        for r in rows
    ]


def write_colour_suite(tmp_path: Path, colour_data, judge_url: str | None = None) -> Path:
    """An MVBench task file and, with a judge, MSVD-QA question/answer files (real layouts)."""
    videos = colour_videos(colour_data)
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


class ColourJudge(BaseHTTPRequestHandler):
    """An OpenAI-format judge: 'yes' when the prediction names the reference colour."""

    calls = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with ColourJudge.lock:
            ColourJudge.calls += 1
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


def write_bounded_suite(tmp_path: Path, colour_data, bounds: bool = True) -> Path:
    """An MVBench ``action_sequence`` task (its items carry ``start``/``end``: 0.2-0.6 s) over
    the validation videos, laid out as MVBench's ``video/star/Charades_v1_480/``."""
    folder = tmp_path / "video" / "star" / "Charades_v1_480"
    folder.mkdir(parents=True)
    items = []
    for rel, colour in colour_videos(colour_data):
        name = Path(rel).name
        (folder / name).symlink_to(colour_data["videos"] / rel)
        items.append({"video": name, "question": COLOUR_QUESTION, "candidates": list(COLOURS),
                      "answer": colour, "start": 0.2, "end": 0.6})  # fmt: skip
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "action_sequence.json").write_text(json.dumps(items))
    seq = {"name": "seq", "format": "mvbench", "annotations": "json", "videos": "video",
           "bounds": bounds}  # fmt: skip
    path = tmp_path / "parts.yaml"
    path.write_text(yaml.safe_dump({"name": "parts", "benchmarks": [seq]}))
    return path
