"""Train/validation split grouped by video."""

from __future__ import annotations

import random

import pytest

from videollm.data.split import split_by_video
from videollm.errors import ConfigError


@pytest.fixture
def twenty_videos(make_record) -> list[dict]:
    return [make_record(f"v{i:02d}", id=f"v{i:02d}_{k}") for i in range(20) for k in range(3)]


def _videos(records: list[dict]) -> set[str]:
    return {r["video"] for r in records}


def test_no_video_in_both_splits(twenty_videos) -> None:
    train, val = split_by_video(twenty_videos, 0.25, seed=0)
    assert not _videos(train) & _videos(val)
    assert len(train) + len(val) == len(twenty_videos)
    assert len(_videos(val)) == 5
    # Every record of a video travels together.
    assert all(len([r for r in val if r["video"] == v]) == 3 for v in _videos(val))


def test_same_seed_same_split_different_seed_different_split(twenty_videos) -> None:
    a = split_by_video(twenty_videos, 0.2, seed=0)
    b = split_by_video(twenty_videos, 0.2, seed=0)
    c = split_by_video(twenty_videos, 0.2, seed=1)
    assert a == b
    assert _videos(a[1]) != _videos(c[1])


def test_split_does_not_depend_on_record_order(twenty_videos) -> None:
    shuffled = list(twenty_videos)
    random.Random(5).shuffle(shuffled)
    assert _videos(split_by_video(shuffled, 0.2, 3)[1]) == _videos(
        split_by_video(twenty_videos, 0.2, 3)[1]
    )


def test_keeps_record_order_within_splits(twenty_videos) -> None:
    train, val = split_by_video(twenty_videos, 0.3, seed=2)
    order = {id(r): i for i, r in enumerate(twenty_videos)}
    for part in (train, val):
        positions = [order[id(r)] for r in part]
        assert positions == sorted(positions)


def test_tiny_fraction_still_gives_one_val_video(make_record) -> None:
    recs = [make_record("a"), make_record("b"), make_record("c")]
    train, val = split_by_video(recs, 0.01, seed=0)
    assert len(_videos(val)) == 1 and len(_videos(train)) == 2


def test_large_fraction_keeps_one_train_video(make_record) -> None:
    train, val = split_by_video([make_record("a"), make_record("b")], 0.99, seed=0)
    assert len(train) == 1 and len(val) == 1


def test_zero_fraction_or_single_video_gives_empty_val(make_record) -> None:
    recs = [make_record("a"), make_record("b")]
    assert split_by_video(recs, 0.0, 0) == (recs, [])
    single = [make_record("a"), make_record("a", id="a_1")]
    assert split_by_video(single, 0.5, 0) == (single, [])


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 2.0])
def test_invalid_fraction(fraction: float, make_record) -> None:
    with pytest.raises(ConfigError, match="val_fraction"):
        split_by_video([make_record("a")], fraction, 0)
