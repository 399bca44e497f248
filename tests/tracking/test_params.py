"""flatten_params and redact_uri: pure functions, no server."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

from videollm.tracking.params import flatten_params
from videollm.tracking.store import redact_uri


@dataclass
class _Optim:
    lr: float = 2e-5
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class _Cfg:
    out: Path = Path("/ckpt")
    optim: _Optim = field(default_factory=_Optim)
    max_tokens: int = 2048
    s3: dict = field(default_factory=lambda: {"secret_key": "hunter2", "endpoint": "http://m"})


def test_flatten_dataclass_nested_and_redacted() -> None:
    flat = flatten_params(_Cfg())
    assert flat == {
        "out": "/ckpt",
        "optim.lr": "2e-05",
        "optim.betas": "[0.9, 0.999]",
        "max_tokens": "2048",  # "token" inside a name is not a secret
        "s3.secret_key": "***",
        "s3.endpoint": "http://m",
    }


def test_long_values_are_cut_to_mlflow_limit() -> None:
    assert len(flatten_params({"prompt": "x" * 10_000})["prompt"]) == MAX_PARAM_VAL_LENGTH


def test_redact_uri_drops_credentials() -> None:
    assert redact_uri("https://bob:pw@mlflow.example:5000/x") == "https://mlflow.example:5000/x"
    assert redact_uri("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"
