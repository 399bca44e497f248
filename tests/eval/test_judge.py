"""The LLM judge against a real local OpenAI-compatible HTTP server."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from local_http import serving

from videollm.eval.judge import (
    JudgeAuthError,
    JudgeConfig,
    JudgeError,
    judge_predictions,
    parse_judge_reply,
)

SECRET = "sk-test-very-secret-value-123"
KEY_ENV = "VIDEOLLM_TEST_JUDGE_KEY"


@dataclass
class FakeOpenAI:
    """Scripted replies keyed by a marker that appears in the prompt's predicted answer."""

    url: str = ""
    scripts: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, marker: str, *replies: tuple[int, str]) -> None:
        self.scripts[marker] = list(replies)

    def next_reply(self, prompt: str) -> tuple[int, str]:
        with self.lock:
            for marker, replies in self.scripts.items():
                if marker in prompt:
                    return replies.pop(0) if len(replies) > 1 else replies[0]
        return 200, "{'score': 3}"


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with fake.lock:
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
            status, content = fake.next_reply(body["messages"][-1]["content"])
            if status == 200:
                out = {
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]
                }
            else:
                # A careless server that echoes the Authorization header in its error body.
                out = {"error": {"message": content, "auth": self.headers.get("Authorization")}}
            data = json.dumps(out).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

    return Handler


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    with serving(_handler(fake)) as url:
        fake.url = f"{url}/v1"
        yield fake


def _cfg(url: str | None, **kw: Any) -> JudgeConfig:
    return JudgeConfig(url=url, model="judge-model-x", api_key_env=KEY_ENV, backoff_s=0.01, **kw)


def _row(i: int, pred: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"v{i}",
        "question": "What happens?",
        "answer": "A man cooks.",
        "pred": pred,
        **extra,
    }


def test_qa_scores_and_request_format(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    fake_openai.script("ANS-YES", (200, "{'pred': 'yes', 'score': 4}"))
    fake_openai.script("ANS-NO", (200, '```python\n{"pred": "no", "score": 1}\n```'))
    fake_openai.script("ANS-BAD", (200, "I am not sure how to rate this."))
    preds = [_row(0, "ANS-YES"), _row(1, "ANS-NO"), _row(2, "ANS-BAD")]
    out = judge_predictions(preds, _cfg(fake_openai.url))
    # Garbage reply excluded: accuracy over 2 = 1/2, score (4 + 1) / 2
    assert out == {
        "judge_qa_accuracy": 0.5,
        "judge_qa_score": 2.5,
        "judge_malformed": 1.0,
        "judge_failed": 0.0,
        "judge_failures": 1.0,
    }
    assert len(fake_openai.requests) == 3
    req = fake_openai.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["body"]["model"] == "judge-model-x"
    assert req["headers"]["Authorization"] == f"Bearer {SECRET}"
    user = next(r for r in fake_openai.requests if "ANS-YES" in json.dumps(r["body"]))
    prompt = user["body"]["messages"][-1]["content"]
    assert "What happens?" in prompt and "A man cooks." in prompt and "'pred'" in prompt


def test_no_key_sends_no_authorization(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    fake_openai.script("X", (200, "{'pred': 'yes', 'score': 5}"))
    assert judge_predictions([_row(0, "X")], _cfg(fake_openai.url))["judge_qa_accuracy"] == 1.0
    assert "Authorization" not in fake_openai.requests[0]["headers"]


def test_retries_5xx_then_succeeds(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(
        "FLAKY", (500, "overloaded"), (503, "again"), (200, "{'pred': 'yes', 'score': 5}")
    )
    out = judge_predictions([_row(0, "FLAKY")], _cfg(fake_openai.url))
    assert out == {
        "judge_qa_accuracy": 1.0,
        "judge_qa_score": 5.0,
        "judge_malformed": 0.0,
        "judge_failed": 0.0,
        "judge_failures": 0.0,
    }
    assert len(fake_openai.requests) == 3


def test_gives_up_after_max_retries(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("DOWN", (500, "down"))
    fake_openai.script("UP", (200, "{'pred': 'no', 'score': 2}"))
    out = judge_predictions([_row(0, "DOWN"), _row(1, "UP")], _cfg(fake_openai.url, max_retries=2))
    assert out == {
        "judge_qa_accuracy": 0.0,
        "judge_qa_score": 2.0,
        "judge_malformed": 0.0,
        "judge_failed": 1.0,
        "judge_failures": 1.0,
    }
    assert sum("DOWN" in json.dumps(r["body"]) for r in fake_openai.requests) == 3


def test_401_names_env_var_and_hides_key(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    fake_openai.script("", (401, "invalid api key"))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(JudgeAuthError) as info:
        judge_predictions([_row(i, f"p{i}") for i in range(3)], _cfg(fake_openai.url))
    text = (
        str(info.value) + repr(info.value) + str(info.value.__cause__) + str(info.value.__context__)
    )
    assert KEY_ENV in str(info.value)
    assert SECRET not in text
    assert SECRET not in caplog.text


def test_404_is_a_clear_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("", (404, "not found"))
    with pytest.raises(JudgeError, match="chat-completions"):
        judge_predictions([_row(0, "p")], _cfg(fake_openai.url))


def test_connection_refused_counts_as_failure() -> None:
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = judge_predictions([_row(0, "p")], _cfg(f"http://127.0.0.1:{port}/v1", max_retries=1))
    assert out == {"judge_malformed": 0.0, "judge_failed": 1.0, "judge_failures": 1.0}


def test_off_without_url() -> None:
    assert judge_predictions([_row(0, "p")], _cfg(None)) == {}


def test_generative_criteria_and_consistency(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("A-ONE", (200, "{'score': 4}"))
    fake_openai.script("A-TWO", (200, "Sure! {'score': 2}"))
    preds = [_row(0, "A-ONE", question2="What is going on?", pred2="He cooks"), _row(1, "A-TWO")]
    criteria = ("correctness", "detail", "context", "temporal", "consistency")
    out = judge_predictions(preds, _cfg(fake_openai.url), criteria=criteria)
    for c in criteria[:4]:
        assert out[f"judge_{c}_score"] == pytest.approx(3.0)
    # Only row 0 has a second phrasing; row 1 is skipped for consistency, not failed.
    assert out["judge_consistency_score"] == 4.0
    assert out["judge_failures"] == 0.0
    assert len(fake_openai.requests) == 9
    consistency = [
        r
        for r in fake_openai.requests
        if "What is going on?" in r["body"]["messages"][-1]["content"]
    ]
    assert len(consistency) == 1 and "He cooks" in consistency[0]["body"]["messages"][-1]["content"]


def test_unknown_criterion_raises() -> None:
    with pytest.raises(ValueError, match="unknown judge criteria"):
        judge_predictions([], _cfg("http://127.0.0.1:1/v1"), criteria=("beauty",))


@pytest.mark.parametrize(
    ("reply", "qa", "expected"),
    [
        ("{'score': 4}", False, {"score": 4.0}),
        ("{'score': 4.8}", False, {"score": 4.8}),
        ('{"score": "3"}', False, {"score": 3.0}),
        ("Score: 2", False, {"score": 2.0}),
        ("{'score': 7}", False, None),
        ("no idea", False, None),
        ("{'pred': 'yes', 'score': 4}", True, {"pred": True, "score": 4.0}),
        ("{'pred': 'No', 'score': 0}", True, {"pred": False, "score": 0.0}),
        ("'pred': 'yes', 'score': 3 (reasoning...)", True, {"pred": True, "score": 3.0}),
        ("{'score': 4}", True, None),
        ("{'pred': 'maybe', 'score': 4}", True, None),
        ("{'pred': 'yes', 'score': None}", True, None),
    ],
)
def test_parse_judge_reply(reply: str, qa: bool, expected: dict[str, Any] | None) -> None:
    assert parse_judge_reply(reply, qa=qa) == expected
