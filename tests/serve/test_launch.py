"""Resolving what ``videollm serve`` serves: paths and registry URIs (and the device the
benchmark's baseline uses, which must be the service's)."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from videollm.errors import VideoLLMError
from videollm.serve.launch import SERVICE, resolve_checkpoint
from videollm.tracking.lookup import registry_version

ROOT = Path(__file__).resolve().parents[2]


def test_champion_alias_resolves_to_the_registered_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    client = MlflowClient()
    with mlflow.start_run() as run:
        pass
    client.create_registered_model("served")
    version = client.create_model_version("served", source=str(ckpt), run_id=run.info.run_id)
    client.set_registered_model_alias("served", "champion", version.version)
    assert resolve_checkpoint(model_uri="models:/served@champion") == ckpt
    assert resolve_checkpoint(model_uri=f"models:/served/{version.version}") == ckpt
    assert resolve_checkpoint(checkpoint=str(ckpt)) == ckpt


def test_resolving_a_registry_version_logs_no_storage_location(tmp_path, caplog):
    # The source may be a presigned or credentialed URI: name, version and run id only.
    ckpt = tmp_path / "bucket-with-credentials" / "ckpt"
    ckpt.mkdir(parents=True)
    client = MlflowClient()
    with mlflow.start_run() as run:
        pass
    client.create_registered_model("quiet")
    client.create_model_version("quiet", source=str(ckpt), run_id=run.info.run_id)
    caplog.set_level(logging.INFO, logger="videollm.tracking.lookup")
    assert registry_version("models:/quiet/1")["mlflow_source"] == str(ckpt)
    assert "bucket-with-credentials" not in caplog.text
    assert "models:/quiet/1 is version 1 of quiet" in caplog.text
    assert run.info.run_id in caplog.text


def test_bad_requests_are_named():
    with pytest.raises(VideoLLMError, match="exactly one"):
        resolve_checkpoint()
    with pytest.raises(VideoLLMError, match="models:/NAME@ALIAS"):
        resolve_checkpoint(model_uri="runs:/abc/model")
    with pytest.raises(VideoLLMError, match="cannot resolve models:/nope@champion"):
        resolve_checkpoint(model_uri="models:/nope@champion")


def test_serve_config_picks_one_model_source():
    from videollm.serve.engine import locate
    from videollm.serve.serve_config import ServeConfig

    with pytest.raises(VideoLLMError, match="only one of"):
        locate(ServeConfig(checkpoint="a", model_uri="models:/x@champion"))
    from videollm.serve.launch import bento_model

    with pytest.raises(VideoLLMError, match="run `videollm package` first"):
        bento_model("never-packaged")


def test_serve_cli_refuses_before_starting_a_server(capsys):
    from videollm.cli.main import main

    assert main(["serve"]) == 1
    assert "exactly one of --bento, --checkpoint or --model-uri" in capsys.readouterr().err
    assert main(["serve", "--model-uri", "models:/nope@champion"]) == 1
    assert "cannot resolve models:/nope@champion" in capsys.readouterr().err


def test_benchmark_baseline_runs_on_the_service_device(monkeypatch):
    """``benchmarks/serve.py --device cuda`` sets VIDEOLLM_DEVICE for both servers."""
    from videollm.features import encoder
    from videollm.model.video_llm import VideoLLM

    placed = {}
    model = SimpleNamespace(
        checkpoint_config=SimpleNamespace(extract={"encoder": "enc", "num_frames": 8}),
        projector=torch.nn.Linear(1, 1),  # "auto" put the model on the CPU
    )

    def from_checkpoint(directory: str, device: str = "auto") -> SimpleNamespace:
        placed["model"] = device
        return model

    monkeypatch.setattr(VideoLLM, "from_checkpoint", from_checkpoint)
    monkeypatch.setattr(encoder, "VideoEncoder", lambda *args: placed.setdefault("enc", args))
    monkeypatch.setenv("VIDEOLLM_CHECKPOINT", "ckpt")
    monkeypatch.setenv("VIDEOLLM_DEVICE", "cuda")
    spec = importlib.util.spec_from_file_location(
        "serve_baseline", ROOT / "benchmarks" / "serve_baseline.py"
    )
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert placed["model"] == "cuda"
    assert placed["enc"][-1] == "cpu"  # the encoder follows the model, as in the service


def test_serve_becomes_bentoml_on_loopback_unless_told(monkeypatch, tmp_path):
    """The CLI execs ``bentoml serve`` (same PID, so `kill PID` reaches it) on 127.0.0.1."""
    from videollm.cli.main import main

    class Exec(Exception):
        pass

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        raise Exec(path, argv, env)

    monkeypatch.setattr(os, "execve", execve)
    for flags, host in (([], "127.0.0.1"), (["--host", "0.0.0.0"], "0.0.0.0")):
        with pytest.raises(Exec) as exc:
            main(["serve", "--checkpoint", str(tmp_path), "--port", "3123", *flags])
        path, argv, env = exc.value.args
        assert argv == [path, "serve", SERVICE, "--host", host, "--port", "3123"]
        assert Path(path).name == "bentoml" and Path(path).parent == Path(sys.executable).parent
        assert env["VIDEOLLM_CHECKPOINT"] == str(tmp_path.resolve())


def test_images_and_chart_listen_on_all_addresses_themselves():
    """They call ``bentoml serve`` with --host 0.0.0.0, not `videollm serve`'s loopback default."""
    dockerfile = (ROOT / "images" / "serve" / "Dockerfile").read_text()
    chart = (ROOT / "charts" / "videollm" / "templates" / "inference.yaml").read_text()
    assert f'"bentoml", "serve", "{SERVICE}", "--host", "0.0.0.0"' in dockerfile
    assert f'"bentoml", "serve", "{SERVICE}", "--host", "0.0.0.0"' in chart


def _bench_module(name: str, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # serve.py imports serve_client
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_benchmark_client_reads_events_and_percentiles(monkeypatch):
    client = _bench_module("serve_client", monkeypatch)
    lines = [": keep-alive", "event: token", 'data: {"text": "a"}', "",
             "event: token", "data:b", "data: c", "", 'data: {"x": 1}', "",
             "event: done", 'data: {"answer": "a b"}']  # fmt: skip
    assert list(client.sse_events(lines)) == [
        ("token", '{"text": "a"}'),
        ("token", "b\nc"),
        ("message", '{"x": 1}'),
        ("done", '{"answer": "a b"}'),  # the last event, though no blank line closes it
    ]
    values = [float(v) for v in range(1, 21)]
    assert client.percentile(values, 50) == 10.0
    assert client.percentile(values[::-1], 95) == 19.0
    assert client.percentile([7.0], 95) == 7.0
    replies = [client.Reply(100, 10, "abcd", 4), client.Reply(300, 300, "ab"),
               client.Reply(5, 5, error="HTTPStatusError: 503")]  # fmt: skip
    summary = client.summarise(replies, wall_s=2.0)
    assert summary["req_per_s"] == 1.0  # the failed request does not count
    assert summary["errors"] == 1 and summary["p95_ms"] == 300
    assert summary["ttft_p50_ms"] == 10 and summary["tokens_per_req"] == 4
    assert summary["chars_per_req"] == 3


def test_benchmark_rss_sums_the_process_tree(monkeypatch):
    import subprocess

    import psutil

    client = _bench_module("serve_client", monkeypatch)
    code = "b = bytearray(64 << 20); import sys; sys.stdin.read()"  # 64 MB until stdin closes
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    try:
        sampler = client.RssSampler(os.getpid())
        while psutil.Process(child.pid).memory_info().rss < 64 << 20:
            pass
        assert sampler.sample() >= psutil.Process().memory_info().rss + (64 << 20)
    finally:
        child.communicate(b"")


def test_benchmark_model_answers_full_length_in_whole_text(monkeypatch, tmp_path):
    """Silenced EOS and partial-byte tokens: greedy answers run to max_new_tokens, all text."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    from videollm.demo.tiny_models import build_tiny_llm

    bench = _bench_module("serve", monkeypatch)
    llm = build_tiny_llm(tmp_path / "llm")
    tokenizer = AutoTokenizer.from_pretrained(llm)
    assert bench.silence_tokens(llm) > len(tokenizer.all_special_ids)
    model = LlamaForCausalLM.from_pretrained(llm)
    prompt = tokenizer("USER: What colour is the video? ASSISTANT:", return_tensors="pt")
    out = model.generate(**prompt, max_new_tokens=48, do_sample=False, min_new_tokens=0)
    new = out[0, prompt.input_ids.shape[1] :].tolist()
    assert len(new) == 48 and tokenizer.eos_token_id not in new
    assert all(tokenizer.decode([t]).strip() and "\ufffd" not in tokenizer.decode([t]) for t in new)
