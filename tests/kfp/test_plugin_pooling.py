"""A pooling registered from outside videollm, used by ``extract`` and by the ``extract_only``
pipeline on ``kfp.local`` with no videollm file edited: the plugin is one module, found by the
pipeline's task subprocesses through ``VIDEOLLM_PLUGINS`` and ``PYTHONPATH``."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from videollm import registry
from videollm.demo.videos import SyntheticVideo, make_synthetic_videos
from videollm.features.extract import ExtractConfig, extract
from videollm.features.pooling import POOLINGS
from videollm.features.store import load_features

MODULE = "videollm_test_plugin_pooling"
NAME = "stride_frames"
NUM_FRAMES = 8
DIM = 32  # the tiny CLIP's width

# The whole plugin: a pooling with one option, in a module of its own.
PLUGIN = f'''
from dataclasses import dataclass

import torch

from videollm.features.pooling import POOLINGS, Pooling


@dataclass
class Options:
    stride: int = 2


@POOLINGS.register("{NAME}", summary="mean over patches of every stride-th frame")
class StrideFrames(Pooling):
    Options = Options

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        means = x.float().mean(dim=1)
        padded = torch.cat([means, means.new_zeros(self.num_frames - len(x), x.shape[2])])
        return padded[:: self.options.stride].to(x.dtype)

    def num_tokens(self, num_patches: int) -> int:
        return -(-self.num_frames // self.options.stride)
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The plugin module written to a folder on ``sys.path`` and ``PYTHONPATH``, named in
    ``VIDEOLLM_PLUGINS``; unregistered afterwards so other tests see the built-ins only."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / f"{MODULE}.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(folder))
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.setenv(registry.PLUGINS_ENV, MODULE)
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    registry.load_plugins()  # as any videollm process does at its first registry lookup
    yield NAME
    POOLINGS._items.pop(NAME, None)
    POOLINGS._summaries.pop(NAME, None)
    sys.modules.pop(MODULE, None)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[SyntheticVideo]:
    """Three short clips (red, green, blue)."""
    return make_synthetic_videos(tmp_path_factory.mktemp("videos"), n_per_class=1)


def _reference_frame_means(videos: Path, tiny_clip_dir: Path, out: Path) -> dict[str, torch.Tensor]:
    """Per-frame means of each video, from the built-in ``spatiotemporal`` pooling."""
    extract(videos, out, ExtractConfig(encoder=str(tiny_clip_dir), num_frames=NUM_FRAMES))
    return {p.stem: load_features(p)[0][:NUM_FRAMES] for p in out.glob("*.safetensors")}


def test_the_plugin_is_a_choice_and_runs_through_extract(
    plugin: str, videos: list[SyntheticVideo], tiny_clip_dir: Path, tmp_path: Path
) -> None:
    assert plugin in POOLINGS.names() and importlib.import_module(MODULE)
    cfg = ExtractConfig(
        encoder=str(tiny_clip_dir),
        num_frames=NUM_FRAMES,
        pooling=plugin,
        pooling_options={"stride": 4},
    )
    result = extract(videos[0].path.parent, tmp_path / "plugin", cfg)
    assert (result.done, result.failed) == (3, 0)
    reference = _reference_frame_means(videos[0].path.parent, tiny_clip_dir, tmp_path / "ref")
    for video in videos:
        feats, meta = load_features(tmp_path / "plugin" / f"{video.path.stem}.safetensors")
        assert feats.shape == (2, DIM)  # frames 0 and 4 of 8
        torch.testing.assert_close(feats, reference[video.path.stem][::4])
        assert (meta["pooling"], meta["pooling_options"]) == (plugin, '{"stride": 4}')


@pytest.mark.slow
def test_the_extract_only_pipeline_takes_the_plugin_pooling(
    plugin: str, videos: list[SyntheticVideo], tiny_clip_dir: Path, tmp_path: Path
) -> None:
    from videollm.kfp.runner import run_local
    from videollm.kfp.work_dirs import features_dir

    params = {
        "videos_uri": str(videos[0].path.parent),
        "encoder": str(tiny_clip_dir),
        "num_frames": NUM_FRAMES,
        "pooling": plugin,
        "pooling_options": {"stride": 2},
        "num_shards": 1,
    }
    run = run_local("extract_only", params, tmp_path)
    out = features_dir(
        run.work_uri, params["videos_uri"], params["encoder"], NUM_FRAMES, plugin, {"stride": 2}
    )
    files = sorted(Path(out).glob("shard-*/*.safetensors"))
    assert len(files) == len(videos)
    reference = _reference_frame_means(videos[0].path.parent, tiny_clip_dir, tmp_path / "ref")
    for path in files:
        feats, meta = load_features(path)
        assert feats.shape == (NUM_FRAMES // 2, DIM)
        torch.testing.assert_close(feats, reference[path.stem][::2])
        # The option went through KFP as a float (protobuf Struct) and was made whole again.
        assert (meta["pooling"], meta["pooling_options"]) == (plugin, '{"stride": 2}')
