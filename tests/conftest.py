"""Session-wide fixtures: tiny random models built offline, and a small coloured-video dataset."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import mlflow
import pytest

from videollm.data.convert import ConvertConfig, convert
from videollm.demo.run import write_colour_annotations
from videollm.demo.tiny_models import build_tiny_clip, build_tiny_llm
from videollm.demo.videos import make_synthetic_videos
from videollm.features.extract import ExtractConfig, extract

# BentoML reads its home once per process: keep the tests' models and Bentos out of ~/bentoml.
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="videollm-tests-bentoml-")
atexit.register(shutil.rmtree, os.environ["BENTOML_HOME"], True)

# Fixture modules (real servers) live next to this file; make them importable as plugins.
sys.path.insert(0, str(Path(__file__).parent))
pytest_plugins = ["mlflow_server", "s3_server"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Clear torch's C++-extension build locks left by a test run that was killed mid-build.

    DeepSpeed compiles its CPU ops through torch, which holds ``<build dir>/lock`` while it
    builds and waits, silently and for ever, while that file exists: one killed run would
    hang every later ZeRO test. No build of this session has started yet (xdist workers
    start after the controller runs this), so any lock found now is stale.
    """
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller did it
        return
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions"
    for lock in [*Path(root).glob("*/lock"), *Path(root).glob("*/*/lock")]:
        lock.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Llama with a byte-level BPE tokenizer and a chat template."""
    return build_tiny_llm(tmp_path_factory.mktemp("tiny_llm"))


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random CLIP vision tower (32×32 input, 8×8 patches → 16 patch tokens of width 32)."""
    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="session")
def colour_data(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> dict[str, Path]:
    """24 videos (8 red, 8 green, 8 blue), their features and an 18/6 train/val split."""
    root = tmp_path_factory.mktemp("colour")
    videos = make_synthetic_videos(root / "videos", n_per_class=8)
    annotations = write_colour_annotations(videos, root / "videos", root / "annotations.jsonl")
    result = extract(
        root / "videos", root / "features", ExtractConfig(encoder=str(tiny_clip_dir), num_frames=8)
    )
    assert result.failed == 0
    convert(
        ConvertConfig(
            format="jsonl", input=str(annotations), out=str(root / "records"), val_fraction=0.25
        )
    )
    return {
        "root": root,
        "videos": root / "videos",
        "features": root / "features",
        "records": root / "records",
    }


@pytest.fixture(autouse=True)
def _isolated_tracking_and_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test records into a throwaway SQLite MLflow store and cache, never the repo's."""
    root = tmp_path_factory.getbasetemp()
    uri = f"sqlite:///{root}/mlflow-default.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    # connect() also sets MLflow's process-wide URI, which beats the variable: an earlier test
    # against a real server would otherwise leak it into this one (order-dependent failures).
    mlflow.set_tracking_uri(uri)
    monkeypatch.setenv("VIDEOLLM_CACHE_DIR", str(root / "cache"))
    for var in ("MLFLOW_RUN_ID", "VIDEOLLM_PARENT_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
