"""Imports point down: the layer table in docs/ARCHITECTURE.md, enforced on every module."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "ARCHITECTURE.md"
OUTSIDE = ("components", "pipelines")  # top-level packages beside videollm/


def layer_table(text: str) -> dict[str, int]:
    """``{unit: layer}`` from the doc's "Import rules" table (``| 3 | `train`, `eval` |``)."""
    section = text.split("## Import rules", 1)[1].split("\n## ", 1)[0]
    layers: dict[str, int] = {}
    for line in section.splitlines():
        match = re.match(r"^\|\s*(\d+)\s*\|(.*)\|\s*$", line)
        if match:
            for unit in re.findall(r"`([\w.]+)`", match.group(2)):
                layers[unit] = int(match.group(1))
    return layers


def unit_of(module: str) -> str:
    """The unit a module belongs to: ``videollm.features.pooling`` → ``features``."""
    parts = module.split(".")
    if parts[0] in OUTSIDE:
        return parts[0]
    return parts[1] if len(parts) > 1 else "videollm"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, roots: tuple[str, ...] = ("videollm", *OUTSIDE)) -> list[tuple[int, str]]:
    """Every absolute import of a module under ``roots`` in ``path``, function-level ones
    included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in roots:
                found.append((node.lineno, name))
    return found


def violations(layers: dict[str, int], files: list[Path]) -> list[str]:
    """``path:line: a → b`` for each import that points to a higher layer or an unknown unit."""
    bad = []
    for path in files:
        source = unit_of(module_name(path))
        if source not in layers:
            bad.append(f"{path.relative_to(REPO)}: `{source}` has no layer in {DOC.name}")
            continue
        for line, name in imports(path):
            target = unit_of(name)
            if target not in layers:
                bad.append(f"{path.relative_to(REPO)}:{line}: `{target}` has no layer")
            elif layers[target] > layers[source]:
                bad.append(
                    f"{path.relative_to(REPO)}:{line}: {source} (layer {layers[source]}) imports "
                    f"{name} (layer {layers[target]})"
                )
    return bad


def project_files() -> list[Path]:
    return sorted(p for top in ("videollm", *OUTSIDE) for p in (REPO / top).rglob("*.py"))


def test_the_doc_gives_every_unit_one_layer() -> None:
    layers = layer_table(DOC.read_text())
    assert layers["errors"] == 0 and layers["pipelines"] == max(layers.values())
    assert layers["components"] > layers["cli"] > layers["kfp"] > layers["steps"]


def test_no_module_imports_a_layer_above_it() -> None:
    assert violations(layer_table(DOC.read_text()), project_files()) == []


def test_only_tracking_talks_to_mlflow() -> None:
    """Other layers go through ``tracking`` (and so through ``connect()``'s checks)."""
    tracking = REPO / "videollm" / "tracking"
    found = [
        f"{path.relative_to(REPO)}:{line}: {name}"
        for path in project_files()
        if tracking not in path.parents
        for line, name in imports(path, roots=("mlflow",))
    ]
    assert found == []
    assert imports(tracking / "store.py", roots=("mlflow",)), "the check sees mlflow imports"


@pytest.mark.parametrize(
    ("module", "source", "message"),
    [
        ("videollm/storage/leak.py", "from videollm.kfp import tasks\n", "storage (layer 1)"),
        ("videollm/kfp/leak.py", "def f():\n    import pipelines.finetune\n", "kfp (layer 5)"),
        ("videollm/newthing.py", "import videollm.errors\n", "`newthing` has no layer"),
    ],
)
def test_the_check_catches_an_upward_import(
    tmp_path: Path, module: str, source: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A planted upward import (also one inside a function) or an unlisted module is reported."""
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    path = tmp_path / module
    path.parent.mkdir(parents=True)
    path.write_text(source)
    found = violations(layer_table(DOC.read_text()), [path])
    assert len(found) == 1 and message in found[0], found
