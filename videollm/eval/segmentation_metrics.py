"""Temporal action-segmentation metrics, as in MS-TCN's ``eval.py`` (Farha & Gall, CVPR 2019).

* MoF — frame-wise accuracy.
* Edit — normalised Levenshtein similarity between the ordered segment label sequences.
* F1@k — segmental F1 where a predicted segment is a true positive when its IoU with an
  unmatched ground-truth segment of the same label reaches ``k``.

Unlike MS-TCN, which reports percentages, every score here lies in ``[0, 1]``. MS-TCN pools
frames and TP/FP/FN over a whole dataset; these functions score one video and
:func:`videollm.eval.metrics.compute_metrics` averages the per-video scores.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from videollm.data.segments import parse_segments, segments_to_frames

logger = logging.getLogger(__name__)

OVERLAPS: tuple[float, ...] = (0.10, 0.25, 0.50)
"""The IoU thresholds reported by MS-TCN and most segmentation papers since."""

# Frames no predicted segment covers get this label: never a ground-truth label, so such frames
# count as wrong for MoF, and it is treated as background so a gap is not a predicted action.
_GAP = ""


def mof(pred_frames: Sequence[str], gt_frames: Sequence[str]) -> float:
    """Mean over frames: the fraction of frames whose predicted label equals the ground truth.

    Raises:
        ValueError: When the two sequences differ in length.
    """
    if len(pred_frames) != len(gt_frames):
        raise ValueError(f"{len(pred_frames)} predicted frames but {len(gt_frames)} ground-truth")
    if not gt_frames:
        return 0.0
    return sum(p == g for p, g in zip(pred_frames, gt_frames, strict=True)) / len(gt_frames)


def frames_to_segments(
    frames: Sequence[str], bg_class: Collection[str] = ()
) -> list[tuple[str, int, int]]:
    """Collapse frame labels to ``(label, start, end_exclusive)`` runs, dropping ``bg_class``."""
    out: list[tuple[str, int, int]] = []
    start = 0
    for i in range(1, len(frames) + 1):
        if i == len(frames) or frames[i] != frames[start]:
            if frames[start] not in bg_class:
                out.append((frames[start], start, i))
            start = i
    return out


def _levenshtein(a: Sequence[str], b: Sequence[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        prev_diag, row[0] = row[0], i
        for j, y in enumerate(b, start=1):
            cost = prev_diag if x == y else 1 + min(prev_diag, row[j], row[j - 1])
            prev_diag, row[j] = row[j], cost
    return row[-1]


def edit_score(
    pred_frames: Sequence[str], gt_frames: Sequence[str], bg_class: Collection[str] = ()
) -> float:
    """Segmental edit score in ``[0, 1]``: ``1 - levenshtein(P, Y) / max(|P|, |Y|)``.

    ``P`` and ``Y`` are the label sequences of the predicted and ground-truth segments, so the
    score punishes over-segmentation regardless of boundaries. Two empty sequences score 1.0.
    """
    p = [label for label, _, _ in frames_to_segments(pred_frames, bg_class)]
    y = [label for label, _, _ in frames_to_segments(gt_frames, bg_class)]
    if not p and not y:
        return 1.0
    return 1.0 - _levenshtein(p, y) / max(len(p), len(y))


def f1_at_overlap(
    pred_frames: Sequence[str],
    gt_frames: Sequence[str],
    overlap: float,
    bg_class: Collection[str] = (),
) -> float:
    """Segmental F1 at IoU threshold ``overlap`` (e.g. 0.10, 0.25, 0.50), in ``[0, 1]``.

    As in MS-TCN, each predicted segment is compared with the same-label ground-truth segment
    of highest IoU; it is a true positive when that IoU reaches ``overlap`` and the segment is
    not already matched, otherwise a false positive. Unmatched ground truth are false negatives.
    """
    preds = frames_to_segments(pred_frames, bg_class)
    gts = frames_to_segments(gt_frames, bg_class)
    hits = [False] * len(gts)
    tp = fp = 0
    for label, p_start, p_end in preds:
        best, best_iou = -1, 0.0
        for j, (g_label, g_start, g_end) in enumerate(gts):
            if g_label != label:
                continue
            inter = min(p_end, g_end) - max(p_start, g_start)
            iou = inter / (max(p_end, g_end) - min(p_start, g_start))
            if best < 0 or iou > best_iou:
                best, best_iou = j, iou
        if best >= 0 and best_iou >= overlap and not hits[best]:
            tp, hits[best] = tp + 1, True
        else:
            fp += 1
    fn = len(gts) - sum(hits)
    if tp == 0:
        return 0.0
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return 2 * precision * recall / (precision + recall)


def _keys() -> list[str]:
    return ["mof", "edit"] + [f"f1@{round(k * 100)}" for k in OVERLAPS]


def segmentation_scores(
    pred_text: str, gt_text: str, bg_class: Collection[str] = ()
) -> dict[str, float]:
    """Score one ``"start-end label, ..."`` prediction against its ground truth.

    Both texts are parsed with :func:`~videollm.data.segments.parse_segments` and expanded to
    one label per sampled frame over the ground truth's length (its largest end + 1); predicted
    frames past that are cut, frames the prediction leaves uncovered are wrong. A prediction
    that does not parse scores 0 on every metric and never raises.

    Args:
        pred_text: The model's answer.
        gt_text: The reference answer.
        bg_class: Labels ignored by edit and F1 (e.g. ``("SIL",)``); MoF counts every frame.

    Returns:
        ``{"mof", "edit", "f1@10", "f1@25", "f1@50"}``, each in ``[0, 1]``.

    Raises:
        ValueError: When the ground truth is not a segmentation (a data error, not a model one).
    """
    gt = parse_segments(gt_text)
    if not gt:
        raise ValueError(f"ground truth is not a segmentation: {gt_text[:80]!r}")
    pred = parse_segments(pred_text or "")
    if not pred:
        logger.debug("unparseable segmentation prediction scored 0: %r", (pred_text or "")[:80])
        return dict.fromkeys(_keys(), 0.0)
    length = max(end for _, end, _ in gt) + 1
    gt_frames = segments_to_frames(gt, length, fill=_GAP)
    pred_frames = segments_to_frames(pred, length, fill=_GAP)
    ignore = {*bg_class, _GAP}
    scores = {
        "mof": mof(pred_frames, gt_frames),
        "edit": edit_score(pred_frames, gt_frames, ignore),
    }
    for k in OVERLAPS:
        scores[f"f1@{round(k * 100)}"] = f1_at_overlap(pred_frames, gt_frames, k, ignore)
    return scores
