"""Read what a ``kfp.local`` run left under its pipeline root: each task's executor output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def task_outputs(root: Path, task: str) -> dict[str, Any]:
    """``executor_output.json`` of ``task`` (e.g. ``train``, ``for-loop-1-iteration-0/extract``)
    in the one run under ``root``."""
    [run_dir] = root.iterdir()
    return json.loads((run_dir / task / "executor_output.json").read_text())


def task_metrics(root: Path, task: str) -> dict[str, float]:
    """The values ``task`` logged to its ``metrics`` (KFP ``Metrics``) output."""
    return task_outputs(root, task)["artifacts"]["metrics"]["artifacts"][0]["metadata"]
