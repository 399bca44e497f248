"""Readers for benchmarks' published annotation files, each turning them into plain items.

An item is a dict::

    {"id", "benchmark", "task", "video", "question", "answer"}
    # + "options", "answer_index" (multiple choice), "question2" (VCGBench consistency)

``video`` is the id our feature store uses for the benchmark's video file
(:func:`videollm.data.records.video_ref_to_id` of the file name the benchmark's convention
gives). Each module documents the layout it reads and the public code it was taken from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from videollm.bench.formats.mvbench import MVBENCH_VIDEO_FOLDERS, load_mvbench
from videollm.bench.formats.vcgbench import load_vcgbench
from videollm.bench.formats.zeroshot_qa import load_zeroshot_qa
from videollm.errors import ConfigError


@dataclass(frozen=True)
class BenchFormat:
    """One benchmark file format."""

    name: str
    """The format's key in :data:`BENCH_FORMATS` (``msrvtt_qa``, ``mvbench``, ...)."""
    kind: str
    """``judge`` (open-ended, scored by the LLM judge) or ``choice`` (multiple choice)."""
    criteria: tuple[str, ...]
    """Judge criteria (:data:`videollm.eval.judge_prompts.CRITERIA`); ``()`` for choice."""
    summary: str
    """One line on what it reads, for --help and the README."""
    load: Callable[..., list[dict[str, Any]]]
    """``load(annotations, name, answers=None, **options) -> items``."""


def _one_file(loader: Callable[..., list[dict[str, Any]]], fmt: str) -> Callable[..., Any]:
    def load(
        annotations: str | Path, name: str, answers: str | Path | None = None, **options: Any
    ) -> list[dict[str, Any]]:
        if answers is not None:
            raise ConfigError(f"answers: format {fmt!r} reads one file; give only annotations")
        return loader(annotations, name, **options)

    return load


def _zeroshot(task: str, summary: str) -> BenchFormat:
    return BenchFormat(task, "judge", ("qa",), summary, partial(load_zeroshot_qa, task))


def _vcg(task: str, criteria: tuple[str, ...], summary: str) -> BenchFormat:
    return BenchFormat(
        task, "judge", criteria, summary, _one_file(partial(load_vcgbench, task), task)
    )


_QA_FILES = "test_q.json + test_a.json (or one merged file)"

BENCH_FORMATS: dict[str, BenchFormat] = {
    f.name: f
    for f in (
        _zeroshot("msvd_qa", f"MSVD-QA, Video-ChatGPT's {_QA_FILES}; videos <clip>.avi"),
        _zeroshot("msrvtt_qa", f"MSRVTT-QA, Video-ChatGPT's {_QA_FILES}; videos video<N>.mp4"),
        _zeroshot("tgif_qa", f"TGIF-QA FrameQA, Video-ChatGPT's {_QA_FILES}; videos tumblr_*"),
        _zeroshot("activitynet_qa", f"ActivityNet-QA, {_QA_FILES}; videos v_<youtube id>.mp4"),
        _vcg(
            "vcgbench_generic",
            ("correctness", "detail", "context"),
            "VCGBench generic_qa.json (video_name, Q, A): correctness, detail, context",
        ),
        _vcg("vcgbench_temporal", ("temporal",), "VCGBench temporal_qa.json (video_name, Q, A)"),
        _vcg(
            "vcgbench_consistency",
            ("consistency",),
            "VCGBench consistency_qa.json (video_name, Q1, Q2, A)",
        ),
        BenchFormat(
            "mvbench",
            "choice",
            (),
            "MVBench json/<task>.json (one file or the folder); multiple choice, by letter",
            _one_file(load_mvbench, "mvbench"),
        ),
    )
}
"""Every benchmark format, by name."""


def load_benchmark(
    fmt: str,
    annotations: str | Path,
    name: str,
    answers: str | Path | None = None,
    *,
    video_folders: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Read one benchmark's published file(s) into items (see the package docstring).

    Args:
        fmt: A key of :data:`BENCH_FORMATS`.
        annotations: The benchmark's file; for ``mvbench`` one task file or a folder of them.
        name: The benchmark's name in the suite, copied into every item's ``benchmark``.
        answers: The answers file of a zero-shot QA benchmark published as questions and
            answers apart (``test_a.json``); not taken by the other formats.
        video_folders: ``mvbench`` only: task → folder of its videos under the videos root
            (default :data:`~videollm.bench.formats.mvbench.MVBENCH_VIDEO_FOLDERS`).

    Returns:
        The items, in file order.

    Raises:
        ConfigError: An unknown format (the message lists the known ones), a missing path,
            answers missing where needed or given where not, or ``video_folders`` for
            another format.
        InputError: Malformed input (``RecordFormatError``), naming the file, line and field.
    """
    spec = BENCH_FORMATS.get(fmt)
    if spec is None:
        raise ConfigError(
            f"unknown benchmark format {fmt!r}; choose from {', '.join(sorted(BENCH_FORMATS))}"
        )
    options: dict[str, Any] = {}
    if video_folders is not None:
        if fmt != "mvbench":
            raise ConfigError(f"video_folders: only format 'mvbench' takes it, not {fmt!r}")
        options["video_folders"] = video_folders
    return spec.load(annotations, name, answers, **options)


__all__ = ["BENCH_FORMATS", "MVBENCH_VIDEO_FOLDERS", "BenchFormat", "load_benchmark"]
