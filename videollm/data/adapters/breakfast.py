"""Adapter for the Breakfast Actions dataset: coarse segment labels → chat records.

Input is either the video root (``BreakfastII_15fps_qvga_sync/P03/cam01/P03_cereals.avi`` with
``P03_cereals.avi.labels`` beside it) or a ``segmentation_coarse`` folder of
``P03_cam01_P03_cereals.txt`` files (nested per activity or flat). Label lines are
``start-end action`` with 1-based inclusive frame ranges at 15 fps.

Video ids equal ``videollm.video.paths.video_id`` of the video under the video root
(``P03_cam01_P03_cereals``) so records find their features: for ``.labels`` files the id joins
the last three path parts, for ``.txt`` files it is the stem.

Answers speak in *sampled-frame* indices (feature positions ``0..n-1``, ``n`` =
``min(num_frames, total_frames)``), since that is all the model sees. A segment starting at
source frame ``f`` starts at ``frame_to_sample(f - 1, total, num_frames)`` and runs until the next
segment starts; a segment that collapses into its successor's first sample is dropped, gaps in
the source are absorbed by the preceding segment, and adjacent equal labels are merged — so the
segments always tile ``0..n-1``. Four question types are made per video (see the ``*_QUESTION``
constants); repetition per type happens later, on the training split only.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videollm.data.adapters._registry import ADAPTERS
from videollm.data.records import VIDEO_TOKEN, strip_video_extension, validate_record
from videollm.data.segments import Segment, format_segments
from videollm.errors import RecordFormatError
from videollm.video.paths import VIDEO_EXTENSIONS
from videollm.video.sampling import frame_to_sample, num_sampled

if TYPE_CHECKING:
    from videollm.data.convert import ConvertConfig

BACKGROUND = "SIL"
SEGMENTATION_QUESTION = "List the segments of this video as start-end action."
ACTIVITY_QUESTION = "Which breakfast activity is shown?"
ORDERING_QUESTION = "In which order do the actions happen?"
WHEN_QUESTION = "When does {action} happen?"

logger = logging.getLogger(__name__)

_STEREO_CHANNEL = re.compile(r"_ch\d+$")


def label_video_id(path: str | Path) -> str:
    """Video id of a label file: last three path parts for ``.labels``, the stem for ``.txt``."""
    p = Path(path)
    if p.suffix != ".labels":
        return p.stem
    stem = strip_video_extension(p.name[: -len(".labels")])
    return "_".join((*p.parent.parts[-2:], stem))


def activity_of(vid: str) -> str:
    """The activity in a Breakfast name: text after the last ``_``, stereo ``_chN`` dropped."""
    return _STEREO_CHANNEL.sub("", vid).rsplit("_", 1)[-1]


def find_label_files(root: str | Path) -> list[tuple[str, Path]]:
    """``(video_id, label_file)`` pairs under ``root``: ``*.labels`` if any, else ``*.txt``.

    Raises:
        RecordFormatError: If no label files are found or two map to the same video id.
    """
    base = Path(root)
    if base.is_file():
        files = [base]
    else:
        files = sorted(base.rglob("*.labels")) or sorted(base.rglob("*.txt"))
    if not files:
        raise RecordFormatError(str(base), "no *.labels or *.txt Breakfast label files found")
    seen: dict[str, Path] = {}
    for f in files:
        vid = label_video_id(f)
        if vid in seen:
            raise RecordFormatError(str(f), f"same video id {vid!r} as {seen[vid]}", field="video")
        seen[vid] = f
    return list(seen.items())


def parse_labels(path: str | Path) -> list[Segment]:
    """Read ``start-end action`` lines (1-based inclusive source frames), in order.

    Blank lines and CRLF endings are tolerated.

    Raises:
        RecordFormatError: On a malformed line, naming file, line and field
            (``range``, ``start``, ``end`` or ``action``), or a file without segments.
    """
    p = Path(path)
    segments: list[Segment] = []
    text = p.read_text(encoding="utf-8-sig", errors="replace")
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        span, *rest = line.split(None, 1)  # space or tab between range and action
        action = rest[0].strip() if rest else ""
        first, dash, last = span.partition("-")
        if not dash:
            raise RecordFormatError(
                str(p), f"expected 'start-end action', got {line!r}", line=lineno, field="range"
            )
        for field, value in (("start", first), ("end", last)):
            if not (value.isascii() and value.strip().isdigit()):
                raise RecordFormatError(
                    str(p), f"not a frame number: {value!r}", line=lineno, field=field
                )
        start, end = int(first), int(last)
        if not action:
            raise RecordFormatError(str(p), "missing action label", line=lineno, field="action")
        if start < 1:
            raise RecordFormatError(str(p), "frames are 1-based", line=lineno, field="start")
        if end < start:
            raise RecordFormatError(str(p), f"end {end} < start {start}", line=lineno, field="end")
        if segments and start <= segments[-1][0]:
            raise RecordFormatError(
                str(p), "segments must be in increasing order of start", line=lineno, field="start"
            )
        segments.append((start, end, action))
    if not segments:
        raise RecordFormatError(str(p), "no segments", field="segments")
    return segments


def to_sampled(segments: list[Segment], num_frames: int) -> list[Segment]:
    """Rescale 1-based source segments to sampled-frame indices tiling ``0..n-1``.

    ``total_frames`` is the last segment's end frame. See the module docstring for the rules.
    """
    total = segments[-1][1]
    n = num_sampled(total, num_frames)
    starts = [frame_to_sample(start - 1, total, num_frames) for start, _, _ in segments]
    starts[0] = 0  # labels that begin after frame 1 still own the first sample
    out: list[Segment] = []
    for k, (_, _, label) in enumerate(segments):
        start = starts[k]
        end = starts[k + 1] - 1 if k + 1 < len(segments) else n - 1
        if end < start:
            continue  # collapsed: the next segment starts in the same sample
        if out and out[-1][2] == label:
            out[-1] = (out[-1][0], end, label)
        else:
            out.append((start, end, label))
    return out


def _record(vid: str, rid: str, task: str, question: str, answer: str) -> dict[str, Any]:
    return {
        "id": rid,
        "video": vid,
        "task": task,
        "conversations": [
            {"from": "human", "value": f"{VIDEO_TOKEN}\n{question}"},
            {"from": "gpt", "value": answer},
        ],
    }


def video_records(vid: str, sampled: list[Segment]) -> list[dict[str, Any]]:
    """The segmentation, activity, ordering and per-action "when" records of one video."""
    records = [
        _record(
            vid,
            f"{vid}_segmentation",
            "segmentation",
            SEGMENTATION_QUESTION,
            format_segments(sampled),
        ),
        _record(vid, f"{vid}_activity", "activity", ACTIVITY_QUESTION, activity_of(vid)),
    ]
    order: list[str] = []
    for _, _, label in sampled:
        # SIL is background, and an action resumed after a pause is still one step.
        if label != BACKGROUND and (not order or order[-1] != label):
            order.append(label)
    if order:
        records.append(
            _record(vid, f"{vid}_ordering", "ordering", ORDERING_QUESTION, ", ".join(order))
        )
    first: dict[str, Segment] = {}
    for seg in sampled:
        if seg[2] != BACKGROUND:
            first.setdefault(seg[2], seg)
    for k, (start, end, label) in enumerate(first.values()):
        question = WHEN_QUESTION.format(action=label)
        records.append(_record(vid, f"{vid}_when_{k}", "when", question, f"{start}-{end}"))
    return records


def _warn_unlabelled(root: str | Path, labelled: set[str]) -> None:
    """Warn, with count and names, about videos under ``root`` that no label file covers."""
    base = Path(root)
    if not base.is_dir():
        return
    videos = (p for p in base.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    ids = {"_".join((*p.parent.parts[-2:], strip_video_extension(p.name))) for p in videos}
    missing = sorted(ids - labelled)
    if missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        logger.warning(
            "%d video(s) under %s have no .labels file and are left out: %s",
            len(missing),
            base,
            shown,
        )


@ADAPTERS.register(
    "breakfast",
    summary="Breakfast Actions coarse labels (a video root or segmentation_coarse folder)",
)
def load_breakfast(input_path: str | Path, cfg: ConvertConfig) -> list[dict[str, Any]]:
    """Convert Breakfast coarse labels under ``input_path`` to chat records.

    Args:
        input_path: The video root, a ``segmentation_coarse`` folder, or one label file.
        cfg: Conversion settings; ``cfg.num_frames`` sets the sampled-frame index space.

    Returns:
        Validated records, videos in sorted label-file order.

    Raises:
        RecordFormatError: On missing or malformed label files (file, line, field).
    """
    records: list[dict[str, Any]] = []
    labelled = find_label_files(input_path)
    _warn_unlabelled(input_path, {vid for vid, _ in labelled})
    for vid, path in labelled:
        sampled = to_sampled(parse_labels(path), cfg.num_frames)
        records.extend(validate_record(rec, path) for rec in video_records(vid, sampled))
    return records
