"""The judge-reply cache and judge identity, against a real local OpenAI-compatible server."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from local_http import serving

from videollm.errors import ConfigError
from videollm.eval.judge import (
    JudgeAuthError,
    JudgeCache,
    JudgeConfig,
    JudgeResult,
    judge_predictions,
    public_url,
    run_judge,
)
from videollm.storage import read_bytes

SECRET = "sk-test-cache-secret-456"
KEY_ENV = "VIDEOLLM_TEST_JUDGE_CACHE_KEY"
SERVED = "gpt-3.5-turbo-0125"


@dataclass
class FakeJudge:
    """An OpenAI-format judge: replies scripted by a marker in the prompt, requests counted.

    A reply's ``{auth}`` is replaced by the request's Authorization header (a server that
    echoes it), and every request sleeps ``delay_s`` so overlapping requests can be seen.
    """

    url: str = ""
    scripts: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    prompts: list[str] = field(default_factory=list)
    delay_s: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, marker: str, *replies: tuple[int, str]) -> None:
        self.scripts[marker] = list(replies)

    def reply_for(self, prompt: str) -> tuple[int, str]:
        with self.lock:
            self.prompts.append(prompt)
            for marker, replies in self.scripts.items():
                if marker in prompt:
                    return replies.pop(0) if len(replies) > 1 else replies[0]
        return 200, "{'pred': 'yes', 'score': 3}"

    def asked(self, marker: str) -> int:
        with self.lock:
            return sum(marker in p for p in self.prompts)


def _handler(fake: FakeJudge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            with fake.lock:
                fake.in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            try:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(fake.delay_s)
                status, content = fake.reply_for(body["messages"][-1]["content"])
                content = content.replace("{auth}", self.headers.get("Authorization") or "")
                if status == 200:
                    message = {"role": "assistant", "content": content}
                    out: dict[str, Any] = {
                        "model": SERVED,
                        "choices": [{"index": 0, "message": message}],
                    }
                else:
                    out = {"error": {"message": content}}
                data = json.dumps(out).encode()
            finally:
                # Done before the reply goes out: once it arrives the client may send its next
                # request, which must not find this one still counted.
                with fake.lock:
                    fake.in_flight -= 1
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

    return Handler


@pytest.fixture
def fake() -> Iterator[FakeJudge]:
    judge = FakeJudge()
    with serving(_handler(judge)) as url:
        judge.url = f"{url}/v1"
        yield judge


def _cfg(url: str, **kw: Any) -> JudgeConfig:
    kw.setdefault("backoff_s", 0.01)
    return JudgeConfig(url=url, model="judge-model-x", api_key_env=KEY_ENV, **kw)


def _row(i: int, pred: str) -> dict[str, Any]:
    return {
        "id": f"v{i}",
        "question": f"What happens in clip {i}?",
        "answer": "A cook.",
        "pred": pred,
    }


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_rerun_is_free_and_a_changed_prediction_costs_one_call(
    fake: FakeJudge, tmp_path: Path
) -> None:
    fake.script("ANS-YES", (200, "{'pred': 'yes', 'score': 4}"))
    fake.script("ANS-NO", (200, "{'pred': 'no', 'score': 1}"))
    cfg = _cfg(fake.url, cache=str(tmp_path / "judge.jsonl"))
    model_a = [_row(0, "ANS-YES"), _row(1, "ANS-NO"), _row(2, "ANS-YES"), _row(3, "ANS-NO")]

    first = run_judge(model_a, cfg)
    assert len(fake.prompts) == 4
    assert first.metrics["judge_qa_accuracy"] == 0.5
    assert first.metrics["judge_qa_score"] == 2.5
    assert first.judge == {
        "model": "judge-model-x",
        "served_model": SERVED,
        "url": fake.url,
        "calls": 4,
        "cached": 0,
    }
    entries = _lines(tmp_path / "judge.jsonl")
    assert len(entries) == 4
    assert {e["id"] for e in entries} == {"v0", "v1", "v2", "v3"}
    assert all(
        set(e) == {"key", "model", "served_model", "criterion", "id", "reply"} for e in entries
    )
    assert {e["reply"] for e in entries} == {
        "{'pred': 'yes', 'score': 4}",
        "{'pred': 'no', 'score': 1}",
    }
    assert {e["served_model"] for e in entries} == {SERVED}

    second = run_judge(model_a, cfg)
    assert len(fake.prompts) == 4  # not one request
    assert second.metrics == first.metrics
    assert second.judge | {"calls": 4, "cached": 0} == first.judge
    assert (second.judge["calls"], second.judge["cached"]) == (0, 4)

    # A second model that differs in one answer: one new call, through the old API too.
    model_b = [*model_a[:3], _row(3, "ANS-YES")]
    out = judge_predictions(model_b, cfg)
    assert len(fake.prompts) == 5 and "Predicted answer: ANS-YES" in fake.prompts[-1]
    assert out["judge_qa_accuracy"] == 0.75
    assert len(_lines(tmp_path / "judge.jsonl")) == 5


def test_one_open_cache_serves_several_runs(fake: FakeJudge, tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    cfg = _cfg(fake.url)  # no cfg.cache: the cache object is passed in
    with JudgeCache.open(str(path)) as cache:
        run_judge([_row(0, "a"), _row(1, "b")], cfg, cache=cache)
        again = judge_predictions([_row(1, "b"), _row(2, "c")], cfg, cache=cache)
        assert len(cache) == 3
    assert len(fake.prompts) == 3
    assert again["judge_qa_accuracy"] == 1.0
    assert len(JudgeCache.open(str(path))) == 3


def test_identical_requests_in_one_run_are_sent_once(fake: FakeJudge) -> None:
    result = run_judge([_row(0, "same"), _row(0, "same") | {"id": "dup"}], _cfg(fake.url))
    assert len(fake.prompts) == 1
    assert result.judge["calls"] == 1
    assert result.metrics["judge_qa_score"] == 3.0  # both rows counted


def test_cache_on_s3_is_read_by_a_fresh_machine(
    fake: FakeJudge, s3_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = s3_env.unique_uri("judge-cache") + "/judge.jsonl"
    cfg = _cfg(fake.url, cache=uri)
    preds = [_row(i, f"answer {i}") for i in range(3)]
    monkeypatch.setenv("VIDEOLLM_CACHE_DIR", str(tmp_path / "machine-a"))
    first = run_judge(preds, cfg)
    assert len(fake.prompts) == 3
    assert len(read_bytes(uri).decode().splitlines()) == 3

    monkeypatch.setenv("VIDEOLLM_CACHE_DIR", str(tmp_path / "machine-b"))  # nothing staged
    second = run_judge(preds, cfg)
    assert len(fake.prompts) == 3
    assert second.metrics == first.metrics
    assert second.judge["cached"] == 3

    # A run killed before its upload: the staging copy keeps the entry and the next close
    # on that machine uploads it.
    killed = JudgeCache.open(uri)
    run_judge([_row(9, "paid for")], cfg, cache=killed)  # never closed
    assert len(read_bytes(uri).decode().splitlines()) == 3
    with JudgeCache.open(uri) as resumed:
        assert len(resumed) == 4
    monkeypatch.setenv("VIDEOLLM_CACHE_DIR", str(tmp_path / "machine-c"))
    assert len(JudgeCache.open(uri)) == 4
    assert len(fake.prompts) == 4


def test_malformed_replies_are_counted_and_not_asked_again(fake: FakeJudge, tmp_path: Path) -> None:
    fake.script("GOOD", (200, "{'pred': 'yes', 'score': 5}"))
    fake.script("BAD", (200, "I am not sure how to rate this."))
    fake.script("HALF", (200, "{'score': 4}"))  # no 'pred': unusable for QA
    cfg = _cfg(fake.url, cache=str(tmp_path / "judge.jsonl"))
    preds = [_row(0, "GOOD"), _row(1, "BAD"), _row(2, "HALF")]
    expected = {
        "judge_qa_accuracy": 1.0,
        "judge_qa_score": 5.0,
        "judge_malformed": 2.0,
        "judge_failed": 0.0,
        "judge_failures": 2.0,
    }
    assert judge_predictions(preds, cfg) == expected
    assert judge_predictions(preds, cfg) == expected  # counted again, from the cache
    assert len(fake.prompts) == 3
    replies = {e["id"]: e["reply"] for e in _lines(tmp_path / "judge.jsonl")}
    assert replies["v1"] == "I am not sure how to rate this."  # raw text, not a verdict


def test_a_500_is_retried_and_cached_once_and_a_failure_is_not_cached(
    fake: FakeJudge, tmp_path: Path
) -> None:
    fake.script("FLAKY", (500, "overloaded"), (200, "{'pred': 'yes', 'score': 5}"))
    fake.script("DOWN", (503, "down"))
    cfg = _cfg(fake.url, cache=str(tmp_path / "judge.jsonl"), max_retries=1)
    preds = [_row(0, "FLAKY"), _row(1, "DOWN")]
    first = run_judge(preds, cfg)
    assert fake.asked("FLAKY") == 2 and fake.asked("DOWN") == 2
    assert first.metrics["judge_qa_accuracy"] == 1.0
    assert (first.metrics["judge_failed"], first.metrics["judge_malformed"]) == (1.0, 0.0)
    assert first.metrics["judge_failures"] == 1.0
    assert [e["id"] for e in _lines(tmp_path / "judge.jsonl")] == ["v0"]

    second = run_judge(preds, cfg)
    assert fake.asked("FLAKY") == 2  # cached
    assert fake.asked("DOWN") == 4  # the failure is asked again
    assert (second.judge["calls"], second.judge["cached"]) == (1, 1)


def test_bad_key_is_refused_and_never_written(
    fake: FakeJudge,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "judge.jsonl"
    # A server that echoes the header into its replies: the stored text is redacted.
    fake.script("ECHO", (200, "{'pred': 'yes', 'score': 2} seen {auth}"))
    fake.script("JUNK", (200, "no dict here, but {auth}"))
    result = run_judge([_row(0, "ECHO"), _row(1, "JUNK")], _cfg(fake.url, cache=str(path)))
    assert result.metrics["judge_qa_score"] == 2.0 and result.metrics["judge_malformed"] == 1.0

    fake.script("", (401, "invalid api key"))
    with pytest.raises(JudgeAuthError) as info:
        run_judge([_row(i, f"p{i}") for i in range(3)], _cfg(fake.url, cache=str(path)))
    assert KEY_ENV in str(info.value)
    assert SECRET not in str(info.value) + repr(info.value)
    assert SECRET not in caplog.text
    assert SECRET not in path.read_text()
    assert "seen Bearer ***" in path.read_text()
    assert len(_lines(path)) == 2  # nothing added by the refused run


def test_truncated_last_line_is_skipped_with_a_warning(
    fake: FakeJudge, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "judge.jsonl"
    cfg = _cfg(fake.url, cache=str(path))
    preds = [_row(i, f"answer {i}") for i in range(3)]
    first = run_judge(preds, cfg)
    text = path.read_text()
    path.write_text(text[:-20])  # a run killed mid-line
    caplog.set_level(logging.WARNING)

    second = run_judge(preds, cfg)
    assert "line 3 is not a complete entry" in caplog.text
    assert len(fake.prompts) == 4  # only the lost entry is asked again
    assert second.metrics == first.metrics
    # The new entry starts on a line of its own, so nothing else is lost.
    assert len(JudgeCache.open(str(path))) == 3
    run_judge(preds, cfg)
    assert len(fake.prompts) == 4


def test_concurrency_is_bounded_by_workers(fake: FakeJudge) -> None:
    fake.delay_s = 0.1
    run_judge([_row(i, f"answer {i}") for i in range(8)], _cfg(fake.url, workers=2))
    assert len(fake.prompts) == 8
    assert fake.max_in_flight == 2  # overlapping, but never more than two


def test_cache_path_that_is_a_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"judge\.cache"):
        JudgeCache.open(str(tmp_path))


def test_judge_off_returns_an_empty_result() -> None:
    assert run_judge([_row(0, "p")], JudgeConfig()) == JudgeResult()


def test_public_url_drops_credentials_and_query() -> None:
    assert public_url("https://user:pw@api.example.com:8443/v1?key=abc#x") == (
        "https://api.example.com:8443/v1"
    )
    assert public_url("http://[::1]:8001/v1") == "http://[::1]:8001/v1"
