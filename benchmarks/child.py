"""Run one benchmark variant in a subprocess of its own (so its peak RSS is its own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

_PREFIX = "RESULT "


def run_child(script: str, name: str, argv: list[str]) -> dict[str, Any]:
    """Run ``script`` with ``argv`` and return the JSON of the last line it printed with
    :func:`report`.

    Raises:
        RuntimeError: The child failed or printed no result (its stderr's end attached).
    """
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, script, *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(_PREFIX) :])


def report(result: dict[str, Any]) -> None:
    """Print a child's result where :func:`run_child` finds it."""
    print(_PREFIX + json.dumps(result), flush=True)
