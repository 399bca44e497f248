"""Decoding ahead of the encoder: worker processes on the CPU, threads for GPU decoding."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch
from decoders import decoder_params

from videollm.features import decode_loader
from videollm.features.decode_loader import DecodeDataset, Item, decode_device, decoded_batches
from videollm.features.extract_config import ExtractConfig
from videollm.video import decode, torchcodec_reader
from videollm.video.decode import decoder_problem, read_video
from videollm.video.paths import list_videos
from videollm.video.torchcodec_reader import torchcodec_device_problem


@pytest.fixture(scope="module")
def items(video_dir: Path) -> list[Item]:
    """The good and broken videos of ``video_dir``, in the order extraction lists them."""
    return [(vid, path, None) for vid, path in list_videos(video_dir)]


def _summary(batches: list[list[decode_loader.Decoded]]) -> list[list[tuple[str, object]]]:
    return [
        [(d.video_id, d.error is None and d.video is not None and d.video.indices) for d in batch]
        for batch in batches
    ]


def test_threads_give_what_worker_processes_give_in_the_same_order(
    items: list[Item], bad_ids: frozenset[str]
) -> None:
    cfg = ExtractConfig(encoder="unused", num_frames=4, batch_size=3, num_workers=2)
    processes = list(decoded_batches(items, cfg, "cpu"))
    threads = list(decode_loader._thread_batches(DecodeDataset(items, cfg, 0), 3, 2))
    assert _summary(threads) == _summary(processes)
    assert [len(b) for b in threads] == [3] * (len(items) // 3) + (
        [len(items) % 3] if len(items) % 3 else []
    )
    assert [d.video_id for b in threads for d in b] == [vid for vid, _, _ in items]
    failed = {d.video_id for b in threads for d in b if d.error is not None}
    assert failed == bad_ids
    for batch_a, batch_b in zip(threads, processes, strict=True):
        for a, b in zip(batch_a, batch_b, strict=True):
            if a.video is not None and b.video is not None:
                assert torch.equal(a.video.frames, b.video.frames) and a.sha256 == b.sha256


class _CountingDataset:
    """Stands in for a DecodeDataset: records the items started; ``fail_at`` raises."""

    def __init__(self, n: int, fail_at: int = -1) -> None:
        self.n = n
        self.fail_at = fail_at
        self.started: list[int] = []
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        with self.lock:
            self.started.append(index)
        if index == self.fail_at:
            raise RuntimeError(f"item {index} broke")
        return index


def test_threads_decode_a_bounded_number_ahead() -> None:
    dataset = _CountingDataset(100)
    batches = decode_loader._thread_batches(dataset, batch=4, threads=2)  # type: ignore[arg-type]
    first = next(batches)
    assert first == [0, 1, 2, 3]
    time.sleep(0.3)  # time for the threads to run whatever was handed to them
    # 2 batches + one per thread ahead, refilled as the first batch was taken: 14, not 100.
    assert len(dataset.started) == 2 * 4 + 2 + 4
    rest = list(batches)
    assert [i for b in [first, *rest] for i in b] == list(range(100))
    assert sorted(dataset.started) == list(range(100))


def test_a_caller_that_stops_early_cancels_what_has_not_started() -> None:
    dataset = _CountingDataset(1000)
    batches = decode_loader._thread_batches(dataset, batch=4, threads=2)  # type: ignore[arg-type]
    next(batches)
    batches.close()  # e.g. the encoder failed: nothing more is decoded
    started = len(dataset.started)
    time.sleep(0.2)
    assert started <= 14 and len(dataset.started) == started


def test_an_error_in_a_decode_thread_reaches_the_caller() -> None:
    dataset = _CountingDataset(50, fail_at=6)
    batches = decode_loader._thread_batches(dataset, batch=4, threads=2)  # type: ignore[arg-type]
    assert next(batches) == [0, 1, 2, 3]
    with pytest.raises(RuntimeError, match="item 6 broke"):
        next(batches)
    assert len(dataset.started) < 50


def test_videos_decode_on_the_gpu_only_where_torchcodec_can(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auto = ExtractConfig(encoder="unused")
    assert decode_device(auto, "cpu") == "cpu"
    assert decode_device(ExtractConfig(encoder="unused", decoder="decord"), "cuda:0") == "cpu"
    assert decode_device(ExtractConfig(encoder="unused", decoder="pyav"), "cuda:1") == "cpu"
    monkeypatch.setattr(decode, "torchcodec_problem", lambda: None)
    monkeypatch.setattr(decode_loader, "torchcodec_device_problem", lambda device: None)
    assert decode_device(auto, "cuda:1") == "cuda:1"
    assert decode_device(ExtractConfig(encoder="unused", decoder="torchcodec"), "cuda") == "cuda"
    # PyPI's torchcodec is a CPU build: it loads, but cannot open a decoder on a GPU.
    monkeypatch.setattr(
        decode_loader, "torchcodec_device_problem", lambda device: "Unsupported device: cuda"
    )
    assert decode_device(auto, "cuda:0") == "cpu"
    monkeypatch.setattr(decode, "torchcodec_problem", lambda: "no FFmpeg")
    assert decode_device(auto, "cuda:0") == "cpu"  # decord then decodes on the CPU


def test_torchcodec_says_why_it_cannot_decode_on_a_device() -> None:
    assert torchcodec_device_problem("cpu") is None
    if not torch.cuda.is_available():
        assert torchcodec_device_problem("cuda") == "CUDA is not available"


@pytest.mark.parametrize("decoder", decoder_params("torchcodec"))
def test_the_device_probe_clip_is_a_video_torchcodec_reads(tmp_path: Path, decoder: str) -> None:
    # Were the probe's clip unreadable, every GPU would look unable to decode.
    clip = torchcodec_reader._write_probe_clip(tmp_path / "probe.mp4")
    video = read_video(clip, num_frames=4, decoder=decoder)
    assert video.total_frames == 2 and video.frames.shape == (2, 64, 64, 3)
    assert int(video.frames.max()) < 20  # black


#: Why torchcodec cannot decode on a GPU here, or None.
GPU_PROBLEM = decoder_problem("torchcodec") or torchcodec_device_problem("cuda")


@pytest.mark.skipif(GPU_PROBLEM is not None, reason=f"needs torchcodec on a GPU: {GPU_PROBLEM}")
def test_torchcodec_decodes_on_the_gpu_the_frames_it_decodes_on_the_cpu(
    good_videos: list[object],
) -> None:
    path = next(v.path for v in good_videos if v.path.suffix == ".mp4")  # type: ignore[attr-defined]
    cpu = read_video(path, num_frames=8, decoder="torchcodec")
    gpu = read_video(path, num_frames=8, decoder="torchcodec", device="cuda", resize_shortest=24)
    assert gpu.frames.device.type == "cuda" and gpu.indices == cpu.indices
    resized = decode.resize_shortest_edge(cpu.frames, 24)
    assert gpu.frames.shape == resized.shape
    assert (gpu.frames.cpu().float() - resized.float()).abs().mean() < 4
