"""The ``convert`` step: annotations → ``train.jsonl``, ``val.jsonl`` and a summary.

Order matters: read and validate everything, split by video, *then* repeat records of the
training split by task (the Breakfast fork's 12× segmentation, 2× others). Repeating before the
split would leak copies into validation and inflate its size; repeating validation would only
weight its metrics. Nothing is written until the whole input has been read, so a bad input never
clobbers outputs of an earlier run.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videollm.atomic import atomic_write_text
from videollm.config_loader import check_int, to_dict
from videollm.data.adapters import ADAPTERS
from videollm.data.records import write_records
from videollm.data.split import split_by_video
from videollm.errors import ConfigError, RecordFormatError

logger = logging.getLogger(__name__)

DEFAULT_REPEAT: dict[str, int] = {"segmentation": 12, "activity": 2, "ordering": 2, "when": 2}
UNTYPED = "untyped"
"""Task name used in counts for records without a ``task`` field."""


@dataclass
class ConvertConfig:
    """Settings of the convert step.

    Attributes:
        format: Input format: a dataset adapter's name (:data:`videollm.data.adapters.ADAPTERS`;
            ``videollm convert --help`` lists them), e.g. ``videochatgpt`` (training JSON as is)
            or ``jsonl`` (``{"video", "question", "answer"}`` lines).
        input: Input file or folder.
        out: Output folder for ``train.jsonl``, ``val.jsonl`` and ``convert_summary.json``.
        repeat: Copies per task in the training split; tasks not listed (or records without a
            task) are kept once. Replaces the default mapping as a whole when set.
        num_frames: Frames sampled per video; Breakfast answers use indices ``0..n-1``.
        val_fraction: Fraction of videos held out for validation, in ``[0, 1)``.
        seed: Seed of the train/validation split.
    """

    format: str = "videochatgpt"
    input: str = ""
    out: str = ""
    repeat: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_REPEAT))
    num_frames: int = 100
    val_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        # Checked here too, so a config file naming an unknown format fails as it is loaded.
        ADAPTERS.get(self.format)


@dataclass
class ConvertResult:
    """What ``convert`` wrote.

    Attributes:
        train_path: Path of ``train.jsonl``.
        val_path: Path of ``val.jsonl``.
        summary_path: Path of ``convert_summary.json``.
        counts: Records per split (``{"train": ..., "val": ...}``), after repeats.
        by_task: Records per split and task (``{"train": {"qa": ...}, "val": {...}}``).
        videos: Distinct videos per split.
    """

    train_path: str
    val_path: str
    summary_path: str
    counts: dict[str, int]
    by_task: dict[str, dict[str, int]]
    videos: dict[str, int]


def _check_config(cfg: ConvertConfig) -> None:
    ADAPTERS.get(cfg.format)  # an unknown name fails here, with the choices
    if not cfg.input:
        raise ConfigError("input: required (the annotation file or folder)")
    if not cfg.out:
        raise ConfigError("out: required (the output folder)")
    if not Path(cfg.input).exists():
        raise ConfigError(f"input: {cfg.input} does not exist")
    check_int(cfg.num_frames, 1, "num_frames")
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise ConfigError(f"val_fraction: must be in [0, 1), got {cfg.val_fraction!r}")
    for task, times in cfg.repeat.items():
        check_int(times, 1, f"repeat.{task}")


def unique_ids(records: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """Records with distinct ids; refuse an id shared by records of different videos.

    Video-ChatGPT's training JSON uses the video name as the id of each of its several
    records per video: those get ``_1``, ``_2`` … suffixes, since predictions and metrics are
    keyed by id. One id on two videos is a broken file (after the split by video it would be in
    train and val at once), so it is refused.

    Raises:
        RecordFormatError: An id names records of more than one video.
    """
    videos: dict[str, set[str]] = {}
    for rec in records:
        videos.setdefault(rec["id"], set()).add(rec["video"])
    clash = sorted(rid for rid, vids in videos.items() if len(vids) > 1)
    if clash:
        shown = ", ".join(f"{rid!r} ({', '.join(sorted(videos[rid]))})" for rid in clash[:3])
        raise RecordFormatError(
            source, f"{len(clash)} record id(s) are used for several videos: {shown}", field="id"
        )
    used = set(videos)
    taken: set[str] = set()
    out, renamed = [], 0
    for rec in records:
        rid, k = rec["id"], 0
        # A suffixed id must not take another record's own id either.
        while rid in taken or (k and rid in used):
            k += 1
            rid = f"{rec['id']}_{k}"
        taken.add(rid)
        out.append(rec if rid == rec["id"] else {**rec, "id": rid})
        renamed += rid != rec["id"]
    if renamed:
        logger.info("%d record(s) shared an id with another of the same video; suffixed", renamed)
    return out


def repeat_by_task(records: list[dict[str, Any]], repeat: dict[str, int]) -> list[dict[str, Any]]:
    """Repeat each record ``repeat[task]`` times (default 1), copies next to the original.

    The first copy keeps its id; copy ``k >= 1`` gets the suffix ``_r{k}`` so ids stay unique.
    """
    out: list[dict[str, Any]] = []
    for rec in records:
        out.append(rec)
        for k in range(1, repeat.get(rec.get("task", ""), 1)):
            out.append({**rec, "id": f"{rec['id']}_r{k}"})
    return out


def _task_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(rec.get("task", UNTYPED) for rec in records).items()))


def convert(cfg: ConvertConfig) -> ConvertResult:
    """Convert annotations to split, repeated chat-record files.

    Args:
        cfg: The settings.

    Returns:
        Paths written and counts per split and task.

    Raises:
        ConfigError: On invalid settings or a missing input.
        RecordFormatError: On a malformed input (file, line, field); nothing is written.
    """
    _check_config(cfg)
    records = ADAPTERS.get(cfg.format)(cfg.input, cfg)
    if not records:
        raise RecordFormatError(cfg.input, "no records found")
    records = unique_ids(records, cfg.input)
    train, val = split_by_video(records, cfg.val_fraction, cfg.seed)
    if not val:
        logger.warning(
            "the validation split is empty (%d video(s), val_fraction=%s): `videollm evaluate` "
            "will have nothing to score; use more videos or a larger val_fraction",
            len({r["video"] for r in records}),
            cfg.val_fraction,
        )
    train = repeat_by_task(train, cfg.repeat)

    out = Path(cfg.out)
    result = ConvertResult(
        train_path=str(out / "train.jsonl"),
        val_path=str(out / "val.jsonl"),
        summary_path=str(out / "convert_summary.json"),
        counts={"train": len(train), "val": len(val)},
        by_task={"train": _task_counts(train), "val": _task_counts(val)},
        videos={"train": len({r["video"] for r in train}), "val": len({r["video"] for r in val})},
    )
    write_records(result.train_path, train)
    write_records(result.val_path, val)
    # Written last: its presence says the two record files above are complete.
    summary = {
        "counts": result.counts,
        "by_task": result.by_task,
        "videos": result.videos,
        "source_records": len(records),
        "config": to_dict(cfg),
    }
    atomic_write_text(result.summary_path, json.dumps(summary, indent=2) + "\n")
    logger.info(
        "converted %d %s records from %s: train %d records / %d videos %s, "
        "val %d records / %d videos %s → %s",
        len(records),
        cfg.format,
        cfg.input,
        result.counts["train"],
        result.videos["train"],
        result.by_task["train"],
        result.counts["val"],
        result.videos["val"],
        result.by_task["val"],
        out,
    )
    return result
