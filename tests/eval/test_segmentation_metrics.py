"""Hand-checked values for the MS-TCN segmentation metrics."""

from __future__ import annotations

import pytest

from videollm.eval.segmentation_metrics import (
    edit_score,
    f1_at_overlap,
    frames_to_segments,
    mof,
    segmentation_scores,
)

GT = list("AAAAABBBBB")
# A A A C B B B B B B: frames 3 (C) and 4 (B for A) wrong -> MoF 8/10
PRED = list("AAACBBBBBB")


def test_frames_to_segments_end_exclusive_and_background() -> None:
    assert frames_to_segments(list("AABCC")) == [("A", 0, 2), ("B", 2, 3), ("C", 3, 5)]
    assert frames_to_segments(list("AABCC"), bg_class={"B"}) == [("A", 0, 2), ("C", 3, 5)]
    assert frames_to_segments([]) == []


def test_mof() -> None:
    assert mof(PRED, GT) == pytest.approx(0.8)
    assert mof(GT, GT) == 1.0
    with pytest.raises(ValueError):
        mof(["A"], ["A", "B"])


def test_edit_score() -> None:
    # label sequences [A, C, B] vs [A, B]: one deletion, 1 - 1/3
    assert edit_score(PRED, GT) == pytest.approx(2 / 3)
    assert edit_score(GT, GT) == 1.0
    assert edit_score(list("CCCCC"), list("AAAAA")) == 0.0
    # Ignoring C as background leaves [A, B] vs [A, B]
    assert edit_score(PRED, GT, bg_class={"C"}) == 1.0


def test_f1_at_overlap_by_hand() -> None:
    # pred A [0,3) vs gt A [0,5): IoU 3/5 = 0.6; pred C: no gt C -> FP;
    # pred B [4,10) vs gt B [5,10): IoU 5/6.  TP 2, FP 1, FN 0 -> P 2/3, R 1, F1 0.8
    for k in (0.10, 0.25, 0.50):
        assert f1_at_overlap(PRED, GT, k) == pytest.approx(0.8)
    # At 0.75 A fails: TP 1, FP 2, FN 1 -> P 1/3, R 1/2, F1 0.4
    assert f1_at_overlap(PRED, GT, 0.75) == pytest.approx(0.4)
    assert f1_at_overlap(list("CCCCCCCCCC"), GT, 0.1) == 0.0


def test_f1_matches_each_gt_segment_once() -> None:
    # Two predicted A segments both best-match the single gt A: the second is a FP.
    pred, gt = list("AABAA"), list("AAAAA")
    # TP 1, FP 2 (second A, and B), FN 0 -> P 1/3, R 1 -> F1 0.5
    assert f1_at_overlap(pred, gt, 0.1) == pytest.approx(0.5)


def test_segmentation_scores_from_text() -> None:
    scores = segmentation_scores("0-2 A, 3-3 C, 4-9 B", "0-4 A, 5-9 B")
    assert scores == pytest.approx(
        {"mof": 0.8, "edit": 2 / 3, "f1@10": 0.8, "f1@25": 0.8, "f1@50": 0.8}
    )
    perfect = segmentation_scores("0-4 A, 5-9 B", "0-4 A, 5-9 B")
    assert perfect == {"mof": 1.0, "edit": 1.0, "f1@10": 1.0, "f1@25": 1.0, "f1@50": 1.0}


def test_segmentation_scores_gaps_and_overrun() -> None:
    # Frames 5-6 uncovered: wrong for MoF, but a gap is not a predicted segment.
    # Prediction past the gt length (ends at 30) is cut to 10 frames.
    scores = segmentation_scores("0-4 A, 7-30 B", "0-4 A, 5-9 B")
    assert scores["mof"] == pytest.approx(0.8)
    assert scores["edit"] == 1.0
    # B [7,10) vs [5,10): IoU 0.6 -> matched at 0.5
    assert scores["f1@50"] == 1.0


@pytest.mark.parametrize("bad", ["", "I think the person makes coffee.", "5-2 A", None])
def test_unparseable_prediction_scores_zero(bad: str | None) -> None:
    scores = segmentation_scores(bad, "0-4 A, 5-9 B")  # type: ignore[arg-type]
    assert scores == {"mof": 0.0, "edit": 0.0, "f1@10": 0.0, "f1@25": 0.0, "f1@50": 0.0}


def test_bad_ground_truth_raises() -> None:
    with pytest.raises(ValueError, match="ground truth"):
        segmentation_scores("0-4 A", "not a segmentation")


def test_background_class_ignored_by_edit_and_f1() -> None:
    scores = segmentation_scores("0-4 SIL, 5-9 B", "0-2 SIL, 3-9 B", bg_class=("SIL",))
    assert scores["mof"] == pytest.approx(0.8)
    assert scores["edit"] == 1.0
    # B [5,10) vs [3,10): IoU 5/7 ~ 0.714 -> matched at 0.5
    assert scores["f1@50"] == 1.0
