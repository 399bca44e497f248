"""compute_metrics: one flat dict over mixed-task predictions."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from videollm.eval.judge import JudgeConfig
from videollm.eval.metrics import compute_metrics

ROWS = [
    {"id": "q1", "question": "Is it raining?", "answer": "yes", "pred": "Yes.", "task": "qa"},
    {"id": "q2", "question": "What color?", "answer": "red", "pred": "blue", "task": "qa"},
    {
        "id": "s1",
        "question": "Segment the video.",
        "answer": "0-4 A, 5-9 B",
        "pred": "0-2 A, 3-3 C, 4-9 B",
        "task": "segmentation",
    },
    {
        "id": "s2",
        "question": "Segment the video.",
        "answer": "0-4 A, 5-9 B",
        "pred": "the person makes coffee",
        "task": "segmentation",
    },
    {
        "id": "c1",
        "question": "Describe.",
        "answer": "a man cooks pasta",
        "pred": "a man cooks pasta",
    },
]


def test_compute_metrics_keys_and_values() -> None:
    out = compute_metrics(ROWS)
    assert all(isinstance(v, float) for v in out.values())
    assert out["count"] == 5.0
    # EM: q1 (yes == Yes.) and c1 -> 2/5
    assert out["exact_match"] == pytest.approx(0.4)
    assert out["em/qa"] == pytest.approx(0.5)
    assert out["em/segmentation"] == 0.0
    assert "em/None" not in out and "em/" not in out  # c1 has no task
    for key in ("token_f1", "bleu4", "rouge_l"):
        assert 0.0 < out[key] < 1.0
    assert 0.0 < out["cider"] <= 10.0
    # s1 scores (0.8, 2/3, 0.8, 0.8, 0.8) by hand (see test_segmentation_metrics); s2 is 0
    assert out["seg_mof"] == pytest.approx(0.4)
    assert out["seg_edit"] == pytest.approx(1 / 3)
    for k in ("seg_f1@10", "seg_f1@25", "seg_f1@50"):
        assert out[k] == pytest.approx(0.4)


def test_no_segmentation_rows_no_seg_keys() -> None:
    out = compute_metrics(ROWS[:2])
    assert not any(k.startswith("seg_") for k in out)
    assert set(out) == {"count", "exact_match", "token_f1", "bleu4", "rouge_l", "cider", "em/qa"}


def test_bad_segmentation_reference_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    rows = [dict(ROWS[2]), {**ROWS[2], "id": "bad", "answer": "not a segmentation"}]
    out = compute_metrics(rows)
    assert out["seg_mof"] == pytest.approx(0.8)
    assert "bad" in caplog.text


def test_empty_and_missing_fields() -> None:
    assert compute_metrics([]) == {
        "count": 0.0,
        "exact_match": 0.0,
        "token_f1": 0.0,
        "bleu4": 0.0,
        "rouge_l": 0.0,
        "cider": 0.0,
    }
    out = compute_metrics([{"id": "x", "question": "q", "answer": "a b", "pred": None}])
    assert out["exact_match"] == 0.0


@pytest.fixture
def judge_url() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            reply = {"choices": [{"message": {"content": "{'pred': 'yes', 'score': 5}"}}]}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_judge_metrics_merged(judge_url: str) -> None:
    out = compute_metrics(ROWS[:2], judge=JudgeConfig(url=judge_url))
    assert out["judge_qa_accuracy"] == 1.0 and out["judge_qa_score"] == 5.0
    assert out["judge_failures"] == 0.0
    assert "judge_qa_accuracy" not in compute_metrics(ROWS[:2], judge=JudgeConfig())
