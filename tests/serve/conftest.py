"""Fixtures for the serving tests: a trained tiny checkpoint behind a real ``bentoml serve``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bento_server import TOKEN, Server, start_server, stop_server

from videollm.train.loop import load_train_config, train

# Helper modules next to this file (serve_helpers, gated_service) import by plain name, and
# a server started with this folder on PYTHONPATH can serve gated_service.
HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session")
def served_checkpoint(colour_data, tiny_llm_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("served") / "ckpt"
    flags = {"records": str(colour_data["records"]), "features": str(colour_data["features"]),
             "out": str(out), "model": {"llm": str(tiny_llm_dir)}}  # fmt: skip
    train(load_train_config("demo", [], flags=flags))
    return out


@pytest.fixture(scope="session")
def server(served_checkpoint, tmp_path_factory) -> Iterator[Server]:
    """The tiny model behind bearer-token auth, with small caps to test them."""
    env = {
        "VIDEOLLM_CHECKPOINT": str(served_checkpoint),
        "VIDEOLLM_API_TOKEN": TOKEN,
        "VIDEOLLM_MAX_UPLOAD_MB": "1",
        "VIDEOLLM_MAX_DURATION_S": "2",
        "VIDEOLLM_MAX_QUESTION_CHARS": "200",
        "VIDEOLLM_MAX_HISTORY_CHARS": "300",
        "VIDEOLLM_MAX_HISTORY_TURNS": "4",
        "VIDEOLLM_MAX_NEW_TOKENS": "32",
        "VIDEOLLM_BUCKET": "platform",
    }
    srv = start_server(tmp_path_factory.mktemp("bento"), env)
    yield srv
    stop_server(srv)
