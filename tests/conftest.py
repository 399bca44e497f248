"""Session-wide fixtures: tiny random models built offline with ``save_pretrained``."""

from __future__ import annotations

from pathlib import Path

import pytest

from videollm.demo.tiny_models import build_tiny_clip, build_tiny_llm


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Llama with a byte-level BPE tokenizer and a chat template."""
    return build_tiny_llm(tmp_path_factory.mktemp("tiny_llm"))


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random CLIP vision tower (32×32 input, 8×8 patches → 16 patch tokens of width 32)."""
    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))
