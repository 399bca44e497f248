"""``videollm runs compare``: a terminal table of an experiment's runs, best first."""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlflow.entities import Run

from videollm.tracking.runs import STEP_TAG
from videollm.tracking.search import Mode, guess_mode, search_finished
from videollm.tracking.store import connect
from videollm.tracking.table import format_table

MAX_AUTO_COLUMNS = 6
# Sampled by MLflow's system-metrics monitor: useful in the UI, noise in a comparison table.
_SYSTEM_PREFIX = "system/"


def _auto_metrics(runs: Sequence[Run]) -> list[str]:
    names = {k for r in runs for k in r.data.metrics if not k.startswith(_SYSTEM_PREFIX)}
    # Evaluation metrics first: they decide which run is better; then the rest by name.
    return sorted(names, key=lambda k: (not k.startswith(("val/", "eval/", "test/", "bench/")), k))[
        :MAX_AUTO_COLUMNS
    ]


def _auto_params(runs: Sequence[Run]) -> list[str]:
    """Params whose value differs between runs — the ones that explain the differences."""
    keys = sorted({k for r in runs for k in r.data.params})
    varying = [k for k in keys if len({r.data.params.get(k) for r in runs}) > 1]
    return varying[:MAX_AUTO_COLUMNS]


def _sort_key(run: Run, metric: str, mode: Mode) -> tuple[bool, float]:
    value = run.data.metrics.get(metric)
    if value is None or math.isnan(value):
        return (True, 0.0)  # Runs without the metric go last.
    return (False, -value if mode == "max" else value)


def compare_runs(
    experiment: str,
    metrics: list[str] | None = None,
    params: list[str] | None = None,
    max_runs: int = 20,
    mode: Mode | None = None,
    step: str | None = None,
) -> str:
    """Tabulate the FINISHED runs of ``experiment`` with key params and metrics.

    Args:
        experiment: experiment name.
        metrics: metric columns; default: up to 6 non-system metrics, ``val/``/``eval/`` first.
        params: param columns; default: up to 6 params whose values differ between runs.
        max_runs: rows shown.
        mode: whether the first metric is better high (``max``) or low (``min``); default
            guessed from its name (``loss``/``error``-like → ``min``).
        step: only runs of this step (``benchmark``, ``evaluate`` ...), by their step tag.

    Returns:
        The table (best run first by the first metric), or a one-line note when empty.

    Raises:
        TrackingError: unreachable server or unknown experiment.
    """
    client = connect()
    runs = search_finished(client, experiment)
    if step:
        runs = [r for r in runs if r.data.tags.get(STEP_TAG) == step]
    if not runs:
        return f"no finished runs in experiment {experiment!r}"
    metric_cols = list(metrics) if metrics is not None else _auto_metrics(runs)
    param_cols = list(params) if params is not None else _auto_params(runs)
    if metric_cols:
        first = metric_cols[0]
        runs = sorted(runs, key=lambda r: _sort_key(r, first, mode or guess_mode(first)))
    rows = []
    for run in runs[:max_runs]:
        row: dict[str, object] = {
            "run": run.data.tags.get("mlflow.runName", ""),
            "run_id": run.info.run_id[:8],
            "step": run.data.tags.get(STEP_TAG),
        }
        row.update({p: run.data.params.get(p) for p in param_cols})
        row.update({m: run.data.metrics.get(m) for m in metric_cols})
        rows.append(row)
    return format_table(rows, ["run", "run_id", "step", *param_cols, *metric_cols])
