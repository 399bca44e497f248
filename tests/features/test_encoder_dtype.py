"""The encoder's dtype: ``auto`` takes bf16 on a CPU only with native bf16 matrix units, the
dtype is recorded in every feature file, bf16 and fp32 features agree, and a resumed run never
mixes the two in one folder."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch
import torch.nn.functional as F

from videollm.errors import ConfigError
from videollm.features import encoder as encoder_module
from videollm.features.encoder import VideoEncoder, cpu_has_native_bf16, resolve_dtype
from videollm.features.extract import ExtractConfig, extract
from videollm.features.store import load_features

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        ("fpu sse2 avx2 fma", False),  # AVX2 only (an EPYC of these machines)
        ("fpu avx2 avx512f avx512bw avx512_vnni", False),  # AVX-512 without BF16
        ("fpu avx2 avx512f avx512_bf16", True),
        ("fpu avx2 amx_bf16 amx_tile amx_int8", True),
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: x\nflags\t\t: {flags}\n")
    assert cpu_has_native_bf16(str(cpuinfo)) is native
    assert cpu_has_native_bf16(str(tmp_path / "none")) is False  # unreadable: no


@pytest.mark.parametrize(("native", "expected"), [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_takes_bf16_on_a_cpu_only_with_native_units(monkeypatch, native, expected):
    monkeypatch.setattr(encoder_module, "cpu_has_native_bf16", lambda: native)
    assert resolve_dtype("auto", CPU) == expected
    assert resolve_dtype("float32", CPU) == torch.float32  # an explicit choice stays


def test_explicit_bf16_without_native_units_warns(monkeypatch, tiny_clip_dir, caplog):
    monkeypatch.setattr(encoder_module, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="videollm.features.encoder"):
        VideoEncoder(str(tiny_clip_dir), device="cpu", dtype="bfloat16")
    assert "emulated and many times slower than float32" in caplog.text
    caplog.clear()
    monkeypatch.setattr(encoder_module, "cpu_has_native_bf16", lambda: True)
    with caplog.at_level(logging.WARNING, logger="videollm.features.encoder"):
        VideoEncoder(str(tiny_clip_dir), device="cpu", dtype="bfloat16")
    assert "emulated" not in caplog.text


def test_bf16_and_fp32_features_agree_and_a_resume_never_mixes_them(
    good_videos, tiny_clip_dir, tmp_path
):
    videos = tmp_path / "videos"
    videos.mkdir()
    for clip in good_videos[:2]:
        shutil.copy(clip.path, videos)
    base = {"encoder": str(tiny_clip_dir), "num_frames": 8, "device": "cpu"}
    out = {d: tmp_path / d for d in ("float32", "bfloat16")}
    for dtype, folder in out.items():
        assert extract(videos, folder, ExtractConfig(**base, dtype=dtype)).done == 2
    for path in sorted(out["float32"].glob("*.safetensors")):
        fp32, meta32 = load_features(path)
        bf16, meta16 = load_features(out["bfloat16"] / path.name)
        assert (meta32["encoder_dtype"], meta16["encoder_dtype"]) == ("float32", "bfloat16")
        assert fp32.dtype == bf16.dtype == torch.float16  # stored fp16 either way
        cosine = F.cosine_similarity(fp32.float(), bf16.float(), dim=-1)
        assert cosine.min() > 0.99, cosine.min()
    with pytest.raises(ConfigError, match="was encoded in float32, this run would encode in bf"):
        extract(videos, out["float32"], ExtractConfig(**base, dtype="bfloat16"))
    assert extract(videos, out["float32"], ExtractConfig(**base, dtype="float32")).skipped == 2
