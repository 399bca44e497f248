"""Faults a user meets from the CLI: clear messages, bounded time, no secrets, nothing lost."""

from __future__ import annotations

import time

from videollm.cli.main import EXIT_ERROR, main


def _convert_args(data, out: str) -> list[str]:
    ann = str(data["root"] / "annotations.jsonl")
    return ["convert", "--format", "jsonl", "--input", ann, "--out", out]


def test_unreachable_mlflow_is_named_within_bounded_time(
    colour_data, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    start = time.monotonic()
    assert main(_convert_args(colour_data, str(tmp_path / "r"))) == EXIT_ERROR
    assert time.monotonic() - start < 30
    assert "http://127.0.0.1:9" in capsys.readouterr().err


def test_wrong_s3_credentials_are_clear_and_secret_free(colour_data, s3_env, monkeypatch, capsys):
    secret = "definitely-not-the-secret-0123456789"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    assert main(_convert_args(colour_data, "s3://work/bad-creds")) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "AWS_SECRET_ACCESS_KEY" in err or "AWS_ACCESS_KEY_ID" in err
    assert secret not in err
