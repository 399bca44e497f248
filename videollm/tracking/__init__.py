"""MLflow tracking: one run per step, training callback, champion selection, run tables.

The callback lives in :mod:`videollm.tracking.callback` and is not imported here, so that
importing tracking does not pull in ``transformers``.
"""

from videollm.tracking.compare import compare_runs
from videollm.tracking.runs import (
    STEP_TAG,
    log_artifact,
    log_dataset,
    log_metrics,
    log_text,
    step_run,
)
from videollm.tracking.select import CHECKPOINT_TAG, SelectResult, select_champion
from videollm.tracking.store import tracking_uri
from videollm.tracking.table import format_table

__all__ = [
    "CHECKPOINT_TAG",
    "STEP_TAG",
    "SelectResult",
    "compare_runs",
    "format_table",
    "log_artifact",
    "log_dataset",
    "log_metrics",
    "log_text",
    "select_champion",
    "step_run",
    "tracking_uri",
]
