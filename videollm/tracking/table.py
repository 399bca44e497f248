"""Plain-text aligned tables for terminals (no extra dependency)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

MISSING = "-"


def format_cell(value: Any) -> str:
    """Render one cell: floats to 4 significant digits, ``None`` as ``-``."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Format dict rows as an aligned table with a header and a rule.

    Numeric columns are right-aligned, text left-aligned.

    Args:
        rows: one mapping per row; missing keys show as ``-``.
        columns: column order; default: keys in first-seen order across rows.

    Returns:
        The table, lines joined by ``\\n`` (no trailing newline); ``"(no rows)"`` when empty.
    """
    if not rows:
        return "(no rows)"
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        columns = list(seen)
    cells = [[format_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    numeric = [all(r[i] == MISSING or _is_number(r[i]) for r in cells) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(list(columns)), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells)
    return "\n".join(out)
