"""read_video: every container and decoder, sampling, the fallback chain, resizing, broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from broken_videos import write_truncated_video
from decoders import EVERY_DECODER

from videollm.demo.videos import COLOURS, FORMATS, ClipSpec, write_video
from videollm.errors import ConfigError, VideoDecodeError
from videollm.video import decode
from videollm.video.decode import auto_decoders, check_decoder, read_video, resize_shortest_edge
from videollm.video.sampling import segment_midpoints
from videollm.video.torchcodec_reader import load_error_summary

CONTAINERS = sorted(FORMATS)


def _square_x(frame: torch.Tensor) -> float:
    """Mean column of the white square's pixels."""
    white = (frame.int().sum(dim=-1) > 700).nonzero()
    return float(white[:, 1].float().mean())


@pytest.mark.parametrize("ext", CONTAINERS)
def test_each_container_decodes(clips: dict[str, Path], clip_frames: int, ext: str) -> None:
    video = read_video(clips[ext], num_frames=8)
    assert video.frames.shape == (8, 48, 64, 3)
    assert video.frames.dtype == torch.uint8
    assert video.indices == segment_midpoints(clip_frames, 8)
    assert video.total_frames == clip_frames
    assert video.fps == pytest.approx(15.0)
    assert video.duration_s == pytest.approx(clip_frames / 15.0)
    background = video.frames[0, 2, 2].int()
    assert (background - torch.tensor(COLOURS["red"])).abs().max() < 25
    assert _square_x(video.frames[-1]) > _square_x(video.frames[0]) + 20  # moves right


def _failing(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``name``'s reader fail as if it could not read any file."""
    label, _ = decode._READERS[name]

    def broken(path: Path, *args: object) -> None:
        raise RuntimeError(f"{name} is unavailable")

    monkeypatch.setitem(decode._READERS, name, (label, broken))


@pytest.mark.parametrize("ext", CONTAINERS)
def test_auto_passes_a_file_on_to_the_next_decoder(
    clips: dict[str, Path], ext: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = auto_decoders()
    assert chain[-1] == "pyav" and chain == [
        d for d in ("torchcodec", "decord", "pyav") if d in chain
    ]
    expected = read_video(clips[ext], num_frames=8)
    assert expected.decoder == chain[0]
    for name in chain[:-1]:
        _failing(name, monkeypatch)
    video = read_video(clips[ext], num_frames=8)
    assert video.decoder == "pyav"
    assert video.indices == expected.indices
    assert video.total_frames == expected.total_frames
    assert video.frames.shape == expected.frames.shape
    # Two FFmpeg builds may convert YUV→RGB slightly differently; the pictures are the same.
    assert (video.frames.float() - expected.frames.float()).abs().mean() < 3


def test_auto_skips_a_decoder_that_does_not_load(
    clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = "no FFmpeg 4 to 8 shared libraries found (libavutil.so.60 missing)"
    monkeypatch.setattr(decode, "torchcodec_problem", lambda: problem)
    assert auto_decoders()[0] != "torchcodec"
    assert read_video(clips["mp4"], num_frames=4).decoder == auto_decoders()[0]
    with pytest.raises(ConfigError) as refused:
        read_video(clips["mp4"], decoder="torchcodec")
    assert str(refused.value) == (
        f"decoder: torchcodec cannot decode on this machine ({problem}); install FFmpeg's "
        "shared libraries (e.g. apt-get install ffmpeg), or use decoder=auto"
    )
    check_decoder("auto")  # auto is always usable: PyAV is a dependency


def test_samples_all_frames_of_a_short_video(clips: dict[str, Path], clip_frames: int) -> None:
    video = read_video(clips["mp4"], num_frames=100)
    assert video.frames.shape[0] == clip_frames
    assert video.indices == list(range(clip_frames))


def test_resize_shortest_keeps_aspect(clips: dict[str, Path]) -> None:
    video = read_video(clips["avi"], num_frames=4, resize_shortest=24)
    assert video.frames.shape == (4, 24, 32, 3)
    assert video.frames.dtype == torch.uint8


def test_resize_portrait_and_noop() -> None:
    frames = torch.zeros(2, 40, 20, 3, dtype=torch.uint8)
    assert resize_shortest_edge(frames, 10).shape == (2, 20, 10, 3)
    assert resize_shortest_edge(frames, 20) is frames


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("truncated", "failed: "),
        ("empty", "file is empty"),
        ("text", "failed: "),
        ("audio_only", "no video stream"),
        ("missing", "does not exist"),
        ("image", "is a GIF image, not a video"),
    ],
)
def test_broken_files_raise(broken: dict[str, Path], kind: str, reason: str) -> None:
    with pytest.raises(VideoDecodeError) as info:
        read_video(broken[kind])
    assert str(broken[kind]) in str(info.value)
    assert reason in info.value.reason
    assert info.value.path == str(broken[kind])


@pytest.mark.parametrize("decoder", ["auto", *EVERY_DECODER])
@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_truncated_with_decodable_frames_samples_from_them(
    tmp_path: Path, ext: str, decoder: str
) -> None:
    # Noise spreads the bytes over all frames, so cutting in half loses frames, not the index.
    frames = np.random.default_rng(0).integers(0, 255, (60, 48, 64, 3), dtype=np.uint8)
    src = write_video(tmp_path / f"full.{ext}", frames, faststart=True)
    cut = write_truncated_video(src, tmp_path / f"cut.{ext}")
    try:
        video = read_video(cut, num_frames=8, decoder=decoder)
    except VideoDecodeError as err:
        # decord gives up on a cut file rather than sample what it holds; auto then uses
        # the next decoder, so only decord on its own may refuse it (with a named error).
        assert decoder == "decord" and err.reason.startswith("decord failed: ")
        return
    assert 0 < video.total_frames < 60
    assert video.indices == segment_midpoints(video.total_frames, 8)
    assert video.frames.shape[0] == 8
    # Every decoder counts the frames that decode as PyAV, decoding front to back, does.
    assert video.total_frames == read_video(cut, num_frames=8, decoder="pyav").total_frames
    # The sampled frames are the source's frames at those indices (noise matches exactly
    # only at the right frame; lossy coding leaves it close).
    for frame, index in zip(video.frames, video.indices, strict=True):
        error = (frame.float() - torch.from_numpy(frames[index]).float()).abs().mean()
        assert error < min(
            (frame.float() - torch.from_numpy(frames[j]).float()).abs().mean()
            for j in range(60)
            if j != index
        )


def test_clip_spec_direction_left(tmp_path: Path) -> None:
    path = write_video(tmp_path / "left.mkv", ClipSpec("green", "left", 12))
    video = read_video(path, num_frames=12)
    assert _square_x(video.frames[-1]) < _square_x(video.frames[0]) - 20


@pytest.mark.parametrize("decoder", EVERY_DECODER)
@pytest.mark.parametrize("ext", CONTAINERS)
def test_each_decoder_samples_the_same_frames(
    clips: dict[str, Path], clip_frames: int, ext: str, decoder: str
) -> None:
    # PyAV decodes every frame front to back: the reference for which frame is which.
    expected = read_video(clips[ext], num_frames=8, decoder="pyav")
    video = read_video(clips[ext], num_frames=8, decoder=decoder)
    assert video.decoder == decoder
    assert video.indices == expected.indices == segment_midpoints(clip_frames, 8)
    assert video.total_frames == clip_frames and video.frames.shape == expected.frames.shape
    assert video.fps == pytest.approx(15.0) and video.frames.dtype == torch.uint8
    assert (video.frames.float() - expected.frames.float()).abs().mean() < 3
    # Frame by frame, the square is where PyAV's frame at the same index has it.
    for ours, theirs in zip(video.frames, expected.frames, strict=True):
        assert abs(_square_x(ours) - _square_x(theirs)) < 1


@pytest.mark.parametrize("decoder", EVERY_DECODER)
@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("truncated", "failed"),
        ("empty", "file is empty"),
        ("text", "failed"),
        ("audio_only", "no video stream"),
        ("missing", "does not exist"),
        ("image", "is a GIF image, not a video"),
    ],
)
def test_each_decoder_turns_broken_files_into_a_named_error(
    broken: dict[str, Path], kind: str, reason: str, decoder: str
) -> None:
    if kind == "audio_only" and decoder == "decord":
        reason = "decord failed"  # decord reads no stream information of its own to report
    with pytest.raises(VideoDecodeError) as info:
        read_video(broken[kind], decoder=decoder)
    assert info.value.path == str(broken[kind]) and reason in info.value.reason
    if kind in ("truncated", "text"):
        label = {"pyav": "PyAV"}.get(decoder, decoder)
        assert info.value.reason.startswith(f"{label} failed: ")
        assert ".cpp:" not in info.value.reason  # no C++ source locations in the message


# torchcodec's error when it loads no FFmpeg: one traceback per FFmpeg version it tried.
_NO_FFMPEG = """Could not load libtorchcodec. Likely causes:
  1. FFmpeg is not properly installed in your environment.
[start of libtorchcodec loading traceback]
FFmpeg version 8:
OSError: libavutil.so.60: cannot open shared object file: No such file or directory
FFmpeg version 5:
OSError: libavutil.so.57: cannot open shared object file: No such file or directory
[end of libtorchcodec loading traceback]."""


def test_torchcodecs_load_error_comes_down_to_what_is_missing() -> None:
    assert load_error_summary(_NO_FFMPEG) == (
        "no FFmpeg 4 to 8 shared libraries found (libavutil.so.60, libavutil.so.57 missing)"
    )
    # FFmpeg 5 is there, but its ops need libpython (Debian's python3 is static).
    no_libpython = _NO_FFMPEG.replace("libavutil.so.57: cannot", "libpython3.11.so.1.0: cannot")
    assert load_error_summary(no_libpython) == (
        "it needs libpython3.11.so.1.0, which is not installed"
    )
    assert load_error_summary("Something else broke\ndetails") == "Something else broke"


def test_an_unknown_decoder_is_refused(clips: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="'ffmpeg' is not one of auto, torchcodec, decord, pyav"):
        read_video(clips["mp4"], decoder="ffmpeg")


@pytest.mark.parametrize("decoder", EVERY_DECODER)
@pytest.mark.parametrize("ext", CONTAINERS)
def test_a_span_samples_only_that_part(clips: dict[str, Path], ext: str, decoder: str) -> None:
    # 24 frames at 15 fps: 0.6-1.2 s is frames 9 to 18, cut into 4 segments.
    part = read_video(clips[ext], num_frames=4, decoder=decoder, span=(0.6, 1.2))
    assert part.indices == [9 + i for i in segment_midpoints(10, 4)]
    whole = read_video(clips[ext], num_frames=24, decoder=decoder)
    # The square moves right ~2 px a frame: each sampled frame is the one at its index.
    for frame, index in zip(part.frames, part.indices, strict=True):
        assert abs(_square_x(frame) - _square_x(whole.frames[index])) < 1
    assert part.total_frames == whole.total_frames  # the video's, not the part's
    with pytest.raises(VideoDecodeError, match=r"the span 5-6 s lies outside the video \(1.6 s\)"):
        read_video(clips[ext], num_frames=4, decoder=decoder, span=(5.0, 6.0))
    with pytest.raises(VideoDecodeError, match="inf is not a span of seconds"):
        read_video(clips[ext], num_frames=4, decoder=decoder, span=(0.0, float("inf")))


def test_a_span_one_decoder_cannot_place_is_tried_with_the_next(
    clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # decord may know no frame rate (it then reports 0) where PyAV reads one.
    def no_rate(path: Path, *args: object) -> None:
        raise VideoDecodeError(str(path), "the video has no frame rate")

    for name in auto_decoders()[:-1]:
        monkeypatch.setitem(decode._READERS, name, (name, no_rate))
    part = read_video(clips["mp4"], num_frames=4, span=(0.6, 1.2))
    assert part.decoder == "pyav"
    assert part.indices == [9 + i for i in segment_midpoints(10, 4)]
