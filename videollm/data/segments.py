"""The text form of a temporal segmentation, shared by the Breakfast converter and the metrics.

A segmentation answer is a comma-separated list of ``start-end label`` items whose ``start`` and
``end`` are inclusive indices of sampled frames (feature positions), e.g.
``"0-11 SIL, 12-40 take_bowl, 41-99 pour_cereals"``.
"""

from __future__ import annotations

import re

Segment = tuple[int, int, str]

_ITEM = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*:?\s*(\S.*?)\s*$")


def format_segments(segments: list[Segment]) -> str:
    """Render ``[(start, end, label), ...]`` as ``"start-end label, ..."``."""
    return ", ".join(f"{s}-{e} {label}" for s, e, label in segments)


def parse_segments(text: str) -> list[Segment] | None:
    """Parse ``format_segments`` output back; ``None`` when the text is not a segmentation."""
    items = [p for p in re.split(r"[,\n;]", text) if p.strip()]
    if not items:
        return None
    out: list[Segment] = []
    for item in items:
        m = _ITEM.match(item)
        if m is None:
            return None
        start, end, label = int(m.group(1)), int(m.group(2)), m.group(3)
        if end < start:
            return None
        out.append((start, end, label))
    return out


def segments_to_frames(segments: list[Segment], length: int, fill: str = "") -> list[str]:
    """Expand segments to one label per sampled frame; frames no segment covers get ``fill``."""
    frames = [fill] * length
    for start, end, label in segments:
        for i in range(max(0, start), min(length - 1, end) + 1):
            frames[i] = label
    return frames
