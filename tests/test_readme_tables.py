"""The README's tables of extensions list exactly what the registries hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from videollm.data.adapters import ADAPTERS
from videollm.features.encoder_family import ENCODER_FAMILIES
from videollm.features.pooling import POOLINGS
from videollm.launcher.registry import LAUNCHERS
from videollm.model.projector import PROJECTORS
from videollm.registry import Registry

README = Path(__file__).resolve().parents[1] / "README.md"

# First header cell of the table → its registry, and whether the second column must be the
# registry's summary word for word (the format table describes each input at more length).
TABLES = {
    "pooling": (POOLINGS, True),
    "encoder family": (ENCODER_FAMILIES, True),
    "`--format`": (ADAPTERS, False),
    "projector": (PROJECTORS, True),
    "launcher": (LAUNCHERS, True),
}


def readme_table(text: str, header: str) -> dict[str, str]:
    """``{name: second cell}`` of the one table whose first header cell is ``header``."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(f"| {header} |")]
    assert len(starts) == 1, f"README needs exactly one table headed {header!r}"
    rows = {}
    for line in lines[starts[0] + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1]
    return rows


@pytest.mark.parametrize("header", TABLES)
def test_readme_table_matches_the_registry(header: str) -> None:
    registry: Registry
    registry, with_summary = TABLES[header]
    rows = readme_table(README.read_text(), header)
    summaries = registry.summaries()
    missing = [f"| `{n}` | {summaries[n]} |" for n in registry.names() if n not in rows]
    extra = sorted(set(rows) - set(registry.names()))
    assert not missing and not extra, f"README {header} table: add rows {missing}, remove {extra}"
    if with_summary:
        stale = {n: (rows[n], summaries[n]) for n in rows if rows[n] != summaries[n]}
        assert not stale, f"README {header} table: (README, registry) summaries differ: {stale}"


def test_a_table_that_misses_a_registered_name_is_caught() -> None:
    text = "| pooling | summary |\n| --- | --- |\n| `spatiotemporal` | x |\n\nafter\n"
    assert readme_table(text, "pooling") == {"spatiotemporal": "x"}
    assert set(POOLINGS.names()) - set(readme_table(text, "pooling")) >= {"per_frame"}
