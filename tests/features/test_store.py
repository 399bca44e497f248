"""Feature files: round trip, atomic writes, errors that name the file, pickle import."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from videollm.errors import FeatureFormatError
from videollm.features import store
from videollm.features.extract_config import RUNTIME_FIELDS, ExtractConfig
from videollm.features.store import (
    METADATA_KEYS,
    feature_metadata,
    import_videochatgpt_pickle,
    load_features,
    read_extract_config,
    read_jsonl,
    save_features,
)
from videollm.video.decode import SampledVideo


def test_round_trip_stores_fp16_and_string_metadata(tmp_path: Path) -> None:
    x = torch.randn(24, 32)
    path = save_features(tmp_path / "v.safetensors", x, {"encoder": "e", "layer": -2})
    y, meta = load_features(path)
    assert y.dtype == torch.float16
    torch.testing.assert_close(y.float(), x, atol=1e-2, rtol=1e-2)
    assert meta == {"encoder": "e", "layer": "-2"}


def test_atomic_write_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_features(tmp_path / "a.safetensors", torch.zeros(2, 2))
    save_features(tmp_path / "a.safetensors", torch.ones(2, 2))  # overwrite in place
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]
    assert load_features(tmp_path / "a.safetensors")[0].sum() == 4

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_features(tmp_path / "b.safetensors", torch.zeros(2, 2))
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]


def test_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(FeatureFormatError, match=r"missing\.safetensors"):
        load_features(missing)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01 not safetensors at all" * 10)
    with pytest.raises(FeatureFormatError, match=r"garbage\.safetensors"):
        load_features(garbage)
    good = save_features(tmp_path / "good.safetensors", torch.randn(64, 64))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(FeatureFormatError, match=r"cut\.safetensors"):
        load_features(cut)
    other = tmp_path / "other.safetensors"
    save_file({"something_else": torch.zeros(2)}, str(other))
    with pytest.raises(FeatureFormatError, match=r"other.safetensors.*'features'"):
        load_features(other)


def test_metadata_keys_and_recorded_config(tmp_path: Path) -> None:
    cfg = ExtractConfig(encoder="/models/clip", num_frames=8, device="cpu", batch_size=7)
    video = SampledVideo(torch.zeros(8, 4, 4, 3, dtype=torch.uint8), list(range(8)), 8, 15.0, 0.5)
    meta = feature_metadata(cfg, video, "/v/a.mp4", "abc")
    assert tuple(meta) == METADATA_KEYS
    assert all(isinstance(v, str) for v in meta.values())
    assert json.loads(meta["extract_config"]).keys().isdisjoint(RUNTIME_FIELDS)
    parsed = read_extract_config(meta)
    assert (parsed.encoder, parsed.num_frames) == ("/models/clip", 8)
    assert (parsed.pooling, parsed.pooling_options) == ("spatiotemporal", {})
    assert json.loads(meta["pooling_options"]) == {}
    assert parsed.batch_size == ExtractConfig().batch_size  # runtime-only: not recorded


def _write_pickle(path: Path) -> np.ndarray:
    feats = np.zeros((356, 1024), dtype=np.float32)
    feats[:10] = 1.0  # 10 real frames, 90 padding rows
    feats[100:] = 2.0
    with open(path, "wb") as f:
        pickle.dump({"v_abc": feats}, f)
    return feats


def test_pickle_import_is_refused_without_opt_in(tmp_path: Path) -> None:
    pkl = tmp_path / "feats.pkl"
    _write_pickle(pkl)
    with pytest.raises(FeatureFormatError, match="allow_pickle"):
        import_videochatgpt_pickle(pkl, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pickle_import_with_opt_in(tmp_path: Path) -> None:
    pkl = tmp_path / "feats.pkl"
    feats = _write_pickle(pkl)
    written = import_videochatgpt_pickle(pkl, tmp_path / "out", allow_pickle=True)
    assert [p.name for p in written] == ["v_abc.safetensors"]
    tensor, meta = load_features(written[0])
    assert tensor.shape == (356, 1024)
    torch.testing.assert_close(tensor.float(), torch.from_numpy(feats))
    assert meta["frames"] == "10"
    assert read_extract_config(meta).num_frames == 100
    (record,) = read_jsonl(tmp_path / "out" / store.MANIFEST_NAME)
    assert (record["video_id"], record["tokens"], record["dim"]) == ("v_abc", 356, 1024)


def test_read_jsonl_skips_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": ')
    assert [r["a"] for r in read_jsonl(path)] == [1, 2]
    path.write_text('{"a": \n{"a": 2}\n')
    with pytest.raises(FeatureFormatError, match=r"m\.jsonl:1"):
        list(read_jsonl(path))
