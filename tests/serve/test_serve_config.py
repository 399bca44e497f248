"""``ServeConfig`` reads each setting from the environment variable its field names."""

from __future__ import annotations

import dataclasses

import pytest

from videollm.errors import ConfigError
from videollm.serve.serve_config import ENV, ServeConfig


def _clear(monkeypatch) -> None:
    for f in dataclasses.fields(ServeConfig):
        monkeypatch.delenv(f.metadata[ENV], raising=False)


def test_every_setting_has_the_variable_named_after_it():
    names = {f.name: f.metadata[ENV] for f in dataclasses.fields(ServeConfig)}
    assert names == {name: f"VIDEOLLM_{name.upper()}" for name in names}
    assert {"VIDEOLLM_CHECKPOINT", "VIDEOLLM_MODEL_URI", "VIDEOLLM_MAX_UPLOAD_MB"} <= set(
        names.values()
    )


def test_unset_or_empty_variables_keep_the_defaults(monkeypatch):
    _clear(monkeypatch)
    monkeypatch.setenv("VIDEOLLM_MAX_NEW_TOKENS", "")
    assert ServeConfig.from_env() == ServeConfig()
    assert (ServeConfig().device, ServeConfig().max_upload_mb, ServeConfig().load_retry_s) == (
        "auto",
        200,
        30,
    )


def test_every_variable_sets_its_field(monkeypatch):
    _clear(monkeypatch)
    expected = {}
    for i, f in enumerate(dataclasses.fields(ServeConfig)):
        value = f"value-{i}" if isinstance(f.default, str) else 1000 + i
        monkeypatch.setenv(f.metadata[ENV], str(value))
        expected[f.name] = value
    assert dataclasses.asdict(ServeConfig.from_env()) == expected


def test_a_number_setting_that_is_not_a_number_is_named(monkeypatch):
    _clear(monkeypatch)
    monkeypatch.setenv("VIDEOLLM_MAX_UPLOAD_MB", "lots")
    with pytest.raises(ConfigError, match="VIDEOLLM_MAX_UPLOAD_MB: expected int, got 'lots'"):
        ServeConfig.from_env()
