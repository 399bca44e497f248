"""Decode videos ahead of the encoder, in batches: worker processes, or threads for the GPU.

On the CPU, ``DataLoader`` worker processes decode while the encoder runs. When torchcodec
decodes on the GPU (``device`` on CUDA), processes cannot share that GPU (CUDA does not
survive ``fork``), so threads decode instead: the GPU's video engine does the work and the
frames stay in GPU memory. Either way a video that cannot be decoded comes back as an item
with its error, so one broken file never fails a batch.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset

from videollm.errors import VideoDecodeError
from videollm.features.extract_config import ExtractConfig
from videollm.features.store import file_sha256
from videollm.video.decode import SampledVideo, auto_decoders, check_decoder, read_video
from videollm.video.sampling import Span
from videollm.video.torchcodec_reader import torchcodec_device_problem

logger = logging.getLogger(__name__)

#: A video to extract: its id (a feature file's name), its file, and the part of it to sample
#: (``None``: all of it).
Item = tuple[str, Path, Span | None]


@dataclass
class Decoded:
    """One decoded video, or why it could not be decoded."""

    video_id: str
    source: str
    video: SampledVideo | None = None
    sha256: str = ""
    error: str | None = None
    span: Span | None = None


class DecodeDataset(Dataset):
    """Decodes one video per item; errors come back as items so a batch never fails."""

    def __init__(
        self, items: list[Item], cfg: ExtractConfig, threads: int, device: str = "cpu"
    ) -> None:
        self.items = items
        self.cfg = cfg
        self.threads = threads
        self.device = device

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Decoded:
        vid, path, span = self.items[index]
        cfg = self.cfg
        try:
            video = read_video(
                path, cfg.num_frames, cfg.resize_shortest, self.threads, cfg.decoder, span,
                self.device,
            )  # fmt: skip
            return Decoded(vid, str(path), video, file_sha256(path), span=span)
        except VideoDecodeError as err:
            return Decoded(vid, str(path), error=str(err))
        except OSError as err:  # e.g. the file vanished between decode and hashing
            return Decoded(vid, str(path), error=f"cannot read {path}: {err}")


def decode_device(cfg: ExtractConfig, device: str) -> str:
    """Where videos decode: the encoder's GPU when torchcodec can decode there, else the CPU.

    Args:
        cfg: Extraction settings (their ``decoder``).
        device: The encoder's resolved device (``cpu``, ``cuda:0`` ...).
    """
    if not device.startswith("cuda") or cfg.decoder not in ("auto", "torchcodec"):
        return "cpu"
    if "torchcodec" not in auto_decoders():
        return "cpu"
    if (problem := torchcodec_device_problem(device)) is not None:
        logger.warning("torchcodec cannot decode on %s (%s); decoding on the CPU", device, problem)
        return "cpu"
    return device


def decoded_batches(items: list[Item], cfg: ExtractConfig, device: str) -> Iterator[list[Decoded]]:
    """``cfg.batch_size`` decoded videos at a time, in order, decoded ahead of the caller.

    Args:
        items: The videos to decode.
        cfg: Extraction settings: ``num_workers`` decode processes (threads on a GPU, at least
            one), ``batch_size``, ``decoder``.
        device: Where to decode (:func:`decode_device`).
    """
    workers = max(0, cfg.num_workers)
    batch = max(1, cfg.batch_size)
    # Load the decoders here, once: forked workers inherit them instead of each importing
    # torchcodec (~1.3 s of CPU on a 2-core machine, beside the encoder loading).
    check_decoder(cfg.decoder)
    chain = auto_decoders() if cfg.decoder == "auto" else [cfg.decoder]
    if device != "cpu":
        threads = max(1, workers)
        logger.info("decoding on %s with %s, %d threads", device, " → ".join(chain), threads)
        # One FFmpeg thread each, should a file fall back to decord or PyAV on the CPU.
        yield from _thread_batches(DecodeDataset(items, cfg, 1, device), batch, threads)
        return
    logger.info("decoding with %s in %d workers", " → ".join(chain), workers)
    # Parallel workers each decode with one thread; a lone decoder may use them all.
    dataset = DecodeDataset(items, cfg, threads=1 if workers > 0 else 0)
    extra: dict[str, Any] = {"prefetch_factor": 2} if workers > 0 else {}
    yield from DataLoader(
        dataset, batch_size=batch, num_workers=workers, collate_fn=_as_list, **extra
    )


def _as_list(batch: list[Decoded]) -> list[Decoded]:
    return batch


def _thread_batches(dataset: DecodeDataset, batch: int, threads: int) -> Iterator[list[Decoded]]:
    """Batches of ``dataset`` decoded by ``threads`` threads, in order.

    At most ``2 * batch + threads`` videos are decoding or decoded and waiting, besides the
    batch the caller holds: the bound keeps frames from piling up in (GPU) memory when the
    encoder is the slower side, as ``DataLoader``'s ``prefetch_factor`` does for processes.
    A caller that stops early (or an error) cancels what has not started.
    """
    ahead = 2 * batch + threads
    pool = ThreadPoolExecutor(threads, thread_name_prefix="decode")
    try:
        pending: deque[Future[Decoded]] = deque(
            pool.submit(dataset.__getitem__, i) for i in range(min(ahead, len(dataset)))
        )
        submitted = len(pending)
        done: list[Decoded] = []
        while pending:
            done.append(pending.popleft().result())
            if submitted < len(dataset):
                pending.append(pool.submit(dataset.__getitem__, submitted))
                submitted += 1
            if len(done) == batch or not pending:
                yield done
                done = []
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
