"""``videollm evaluate --endpoint``: scoring a served model over a real local HTTP server.

The server speaks OpenAI chat completions the way vLLM takes video: it decodes the base64
``data:`` URL it is sent with PyAV and answers the dominant colour of the first frame, so the
metrics are meaningful and, with one colour answered wrongly, exactly predictable.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from fake_video_endpoint import COLOURS, FakeVideoLLM, endpoint_handler
from local_http import serving
from mlflow.tracking import MlflowClient

from videollm.cli.main import EXIT_CONFIG, EXIT_ERROR, main
from videollm.data.records import read_records
from videollm.errors import ConfigError, InputError
from videollm.eval.endpoint import EndpointConfig
from videollm.eval.evaluate import EvalConfig, evaluate
from videollm.eval.generate import GenerationArgs
from videollm.eval.openai_client import (
    EndpointAuthError,
    EndpointNotFoundError,
    RequestFailedError,
)

SECRET = "sk-endpoint-test-secret-4242"
KEY_ENV = "VIDEOLLM_TEST_ENDPOINT_KEY"
MODEL = "colour-model"


@pytest.fixture
def fake() -> Iterator[FakeVideoLLM]:
    fake = FakeVideoLLM()
    with serving(endpoint_handler(fake)) as url:
        fake.url = f"{url}/v1"
        yield fake


@pytest.fixture
def val(colour_data: dict[str, Path]) -> Path:
    return colour_data["records"] / "val.jsonl"


def _cfg(fake: FakeVideoLLM, data: dict[str, Path], out: Path, **kw: Any) -> EvalConfig:
    endpoint = {"url": fake.url, "model": MODEL, "api_key_env": KEY_ENV, "backoff_s": 0.01}
    endpoint |= kw.pop("endpoint", {})
    return EvalConfig(
        records=str(kw.pop("records", data["records"] / "val.jsonl")),
        videos=str(data["videos"]),
        out=str(out),
        endpoint=EndpointConfig(**endpoint),
        **kw,
    )


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_scores_the_endpoint_and_sends_the_video(
    fake: FakeVideoLLM, colour_data: dict[str, Path], val: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    fake.key = SECRET
    gen = GenerationArgs(max_new_tokens=7, temperature=0.25)
    metrics = evaluate(_cfg(fake, colour_data, tmp_path, generation=gen))

    records = read_records(val)
    rows = _lines(tmp_path / "predictions.jsonl")
    # The rows checkpoint evaluation writes, in record order, every answer right.
    assert [r["id"] for r in rows] == [r["id"] for r in records]
    assert all(set(r) == {"id", "question", "answer", "task", "pred"} for r in rows)
    assert all(r["pred"] == r["answer"] and r["answer"] in COLOURS for r in rows)
    assert metrics["exact_match"] == 1.0 and metrics["count"] == len(records)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["metrics"] == metrics
    assert saved["config"]["endpoint"]["url"] == fake.url
    assert saved["config"]["endpoint"]["model"] == MODEL
    assert saved["endpoint"]["served_model"] == f"served/{MODEL}"
    assert saved["endpoint"]["total_prompt_tokens"] == 10 * len(records)
    assert SECRET not in (tmp_path / "metrics.json").read_text()

    assert len(fake.requests) == len(records)
    by_text = {r["body"]["messages"][0]["content"][1]["text"]: r for r in fake.requests}
    assert set(by_text) == {"What colour is the video?"}
    for req in fake.requests:
        assert req["path"] == "/v1/chat/completions"
        assert req["headers"]["Authorization"] == f"Bearer {SECRET}"
        body = req["body"]
        assert body["model"] == MODEL
        assert body["max_tokens"] == 7 and body["temperature"] == 0.25
        (message,) = body["messages"]
        assert message["role"] == "user"
        video, text = message["content"]
        assert video["type"] == "video_url" and text["type"] == "text"
    # Each question carried its own video file, whole, typed by its extension.
    files = {p.stem: p for p in colour_data["videos"].iterdir()}
    mimes = {".mp4": "video/mp4", ".avi": "video/x-msvideo", ".mkv": "video/x-matroska"}
    expected = sorted(
        f"data:{mimes[files[v].suffix]};base64,{base64.b64encode(files[v].read_bytes()).decode()}"
        for v in (r["video"] for r in records)
    )
    sent = [r["body"]["messages"][0]["content"][0]["video_url"]["url"] for r in fake.requests]
    assert sorted(sent) == expected


def test_wrong_answers_for_one_colour_lower_exact_match_exactly(
    fake: FakeVideoLLM, colour_data: dict[str, Path], val: Path, tmp_path: Path
) -> None:
    fake.wrong_for = "blue"
    answers = [r["conversations"][1]["value"] for r in read_records(val)]
    assert "blue" in answers and len(set(answers)) > 1  # the split has blue and others
    metrics = evaluate(_cfg(fake, colour_data, tmp_path))
    right = sum(a != "blue" for a in answers) / len(answers)
    assert metrics["exact_match"] == pytest.approx(right)
    assert metrics["em/qa"] == pytest.approx(right)
    preds = {r["answer"]: r["pred"] for r in _lines(tmp_path / "predictions.jsonl")}
    assert preds["blue"] == "purple"


def test_earlier_turns_go_before_the_question(
    fake: FakeVideoLLM, colour_data: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    vid = sorted(p.stem for p in colour_data["videos"].iterdir() if p.stem.startswith("red"))[0]
    turns = ["<video>\nWhat colour is the video?", "red", "Which colour again?", "red"]
    conv = [{"from": ("human", "gpt")[i % 2], "value": t} for i, t in enumerate(turns)]
    records = tmp_path / "multi.jsonl"
    records.write_text(json.dumps({"id": "m0", "video": vid, "conversations": conv}) + "\n")
    metrics = evaluate(_cfg(fake, colour_data, tmp_path / "out", records=records))
    assert metrics["exact_match"] == 1.0 and metrics["count"] == 2
    assert all("Authorization" not in r["headers"] for r in fake.requests)
    second = next(r["body"]["messages"] for r in fake.requests if len(r["body"]["messages"]) > 1)
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[0]["content"][0]["type"] == "video_url"
    assert second[0]["content"][1] == {"type": "text", "text": "What colour is the video?"}
    assert second[1:] == [
        {"role": "assistant", "content": "red"},
        {"role": "user", "content": "Which colour again?"},
    ]
    assert [r["id"] for r in _lines(tmp_path / "out" / "predictions.jsonl")] == ["m0", "m0_t1"]


def test_retries_a_500_then_scores(
    fake: FakeVideoLLM, colour_data: dict[str, Path], tmp_path: Path
) -> None:
    fake.failures = [(500, "overloaded"), (503, "still overloaded")]
    cfg = _cfg(fake, colour_data, tmp_path, limit=2, endpoint={"workers": 1})
    assert evaluate(cfg)["exact_match"] == 1.0
    assert len(fake.requests) == 4  # two failed attempts, then both questions


def test_gives_up_naming_the_question_and_endpoint(
    fake: FakeVideoLLM, colour_data: dict[str, Path], val: Path, tmp_path: Path
) -> None:
    fake.failures = [(500, "down")] * 50
    cfg = _cfg(fake, colour_data, tmp_path, endpoint={"workers": 1, "max_retries": 1})
    with pytest.raises(RequestFailedError, match="gave up after 2 attempts") as info:
        evaluate(cfg)
    assert fake.url in str(info.value)
    assert any(f"question {r['id']!r}" in str(info.value) for r in read_records(val))
    assert not (tmp_path / "predictions.jsonl").exists()  # no partial, incomparable results


def test_a_4xx_carries_the_servers_reason_redacted(
    fake: FakeVideoLLM, colour_data: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    fake.failures = [(400, "this model does not support video input")]
    cfg = _cfg(fake, colour_data, tmp_path, limit=1)
    with pytest.raises(RequestFailedError, match=r"HTTP 400.*does not support video input") as info:
        evaluate(cfg)
    assert len(fake.requests) == 1  # a 4xx is not retried
    # The server echoed the Authorization header into its reason; the key is masked.
    assert SECRET not in str(info.value) and "Bearer ***" in str(info.value)


def test_401_names_the_env_var_and_never_the_key(
    fake: FakeVideoLLM, colour_data: dict[str, Path], tmp_path: Path, monkeypatch, caplog
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    fake.key = "the-key-the-server-wants"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(EndpointAuthError) as info:
        evaluate(_cfg(fake, colour_data, tmp_path))
    err = info.value
    assert KEY_ENV in str(err) and "HTTP 401" in str(err)
    text = str(err) + repr(err) + str(err.__cause__) + str(err.__context__)
    assert SECRET not in text
    assert SECRET not in caplog.text
    assert fake.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"  # it was sent


def test_401_without_a_key_says_none_was_sent(
    fake: FakeVideoLLM, colour_data: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    fake.key = "needed"
    with pytest.raises(EndpointAuthError, match=f"no key was sent: {KEY_ENV} is not set"):
        evaluate(_cfg(fake, colour_data, tmp_path, limit=1))


def test_404_is_a_clear_error(
    fake: FakeVideoLLM, colour_data: dict[str, Path], tmp_path: Path
) -> None:
    cfg = _cfg(fake, colour_data, tmp_path, limit=1, endpoint={"url": fake.url + "/nope"})
    with pytest.raises(EndpointNotFoundError, match=r"no chat-completions endpoint at .*/nope"):
        evaluate(cfg)


def test_missing_video_is_named(
    fake: FakeVideoLLM, colour_data: dict[str, Path], val: Path, tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    first = read_records(val)[0]["video"]
    for p in colour_data["videos"].iterdir():
        if p.stem != first:
            (videos / p.name).symlink_to(p)
    cfg = _cfg(fake, colour_data, tmp_path / "out")
    cfg.videos = str(videos)
    with pytest.raises(InputError, match=f"not in {videos}: {first}"):
        evaluate(cfg)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"checkpoint": "ckpt"}, "checkpoint and endpoint.url both given"),
        ({"features": "feats"}, "features: not used when scoring an endpoint"),
        ({"videos": ""}, "videos: required with endpoint.url"),
    ],
)
def test_inconsistent_sources_are_refused(
    fake: FakeVideoLLM, colour_data: dict[str, Path], tmp_path: Path, changes, message
) -> None:
    cfg = _cfg(fake, colour_data, tmp_path)
    for key, value in changes.items():
        setattr(cfg, key, value)
    with pytest.raises(ConfigError, match=message):
        evaluate(cfg)
    assert fake.requests == []


def test_cli_refuses_checkpoint_with_endpoint_and_names_missing_flags(
    val: Path, tmp_path: Path, capsys
) -> None:
    base = ["evaluate", "--records", str(val), "--out", str(tmp_path)]
    url = ["--endpoint", "http://127.0.0.1:9/v1"]
    assert main([*base, *url, "--model", MODEL, "--checkpoint", "c", "--videos", "v"]) == (
        EXIT_CONFIG
    )
    assert "--checkpoint, --endpoint" in capsys.readouterr().err
    assert main(base) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "--checkpoint and --features" in err and "--endpoint URL --model NAME" in err
    assert main([*base, *url, "--videos", "v"]) == EXIT_CONFIG
    assert "endpoint.model: required" in capsys.readouterr().err


def test_cli_records_the_endpoint_run_in_mlflow(
    fake: FakeVideoLLM, colour_data: dict[str, Path], val: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_EXPERIMENT_NAME"}
    env |= {"MLFLOW_TRACKING_URI": uri, KEY_ENV: SECRET}
    fake.key = SECRET
    proc = subprocess.run(
        [sys.executable, "-m", "videollm.cli.main", "evaluate", "--endpoint", fake.url,
         "--model", f"org/{MODEL}", "--api-key-env", KEY_ENV, "--workers", "2",
         "--records", str(val), "--videos", str(colour_data["videos"]),
         "--out", str(tmp_path / "eval")],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["exact_match"] == 1.0
    assert SECRET not in proc.stdout + proc.stderr

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("videollm").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["videollm.step"] == "evaluate"
    assert run.data.tags["videollm.model"] == f"org/{MODEL} @ {fake.url}"
    assert run.info.run_name == f"evaluate-{MODEL}-{run.info.run_id[:6]}"
    assert run.data.params["endpoint.url"] == fake.url
    assert run.data.params["endpoint.model"] == f"org/{MODEL}"
    assert run.data.params["endpoint.api_key_env"] == KEY_ENV
    assert SECRET not in json.dumps(run.data.params) + json.dumps(run.data.tags)
    assert run.data.metrics["val/exact_match"] == 1.0
    assert run.data.metrics["val/count"] == len(read_records(val))

    # `videollm runs compare` shows the run beside others, by the model it scored.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    capsys.readouterr()
    assert (
        main(["runs", "compare", "--metrics", "val/exact_match", "--params", "endpoint.model"]) == 0
    )
    table = capsys.readouterr().out
    assert f"evaluate-{MODEL}-" in table and f"org/{MODEL}" in table
    # Compared, never selected: an outside model has no checkpoint to become the champion.
    assert main(["select"]) == EXIT_ERROR
    assert "has val/exact_match and a checkpoint" in capsys.readouterr().out
