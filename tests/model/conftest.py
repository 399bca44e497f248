"""Fixtures of the model tests: tiny LLMs a projector alone can steer, and answer scoring."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from videollm.demo.tiny_models import build_tiny_llm

# Helper modules next to this file (model_scoring) import by plain name.
sys.path.insert(0, str(Path(__file__).parent))

#: Weights drawn 15× wider than Llama's 0.02: at 0.02 a random tiny LLM emits near-uniform
#: logits that no input embedding can move (see the demo recipe), so a projector-only run
#: could not show learning. Wider weights let the video embeddings steer the answer.
STEERABLE_INIT = 0.3


@pytest.fixture(scope="session")
def steerable_llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Llama whose answers a trained projector alone can steer."""
    return build_tiny_llm(
        tmp_path_factory.mktemp("steerable_llm"), initializer_range=STEERABLE_INIT
    )
