"""Runs whose process died: found through the output folder they wrote, and closed.

A ``kill -9`` (or an OOM kill, or a node lost) ends a step without ending its MLflow run,
which then shows as RUNNING forever. Each step records its run in a small marker file in its
output folder; the next step that writes the same folder ends the recorded run as KILLED if it
is still RUNNING. Only local folders are claimed, under their write lock, so no live process
can still own one; a remote prefix may be written from other machines and is never claimed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mlflow
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException

from videollm.atomic import atomic_write_text
from videollm.tracking.store import redact_uri

log = logging.getLogger(__name__)

RUN_MARKER = ".videollm_run.json"


def claim_output(folder: str | Path, step: str) -> Path | None:
    """Record the active run as the writer of ``folder``; close a dead earlier writer's run.

    Args:
        folder: The step's local output folder.
        step: The step name, kept in the marker.

    Returns:
        The marker file, or None when there is no active MLflow run.
    """
    run = mlflow.active_run()
    if run is None:
        return None
    marker = Path(folder) / RUN_MARKER
    uri = redact_uri(mlflow.get_tracking_uri())
    previous = _read(marker)
    earlier = previous.get("run_id")
    if earlier not in (None, run.info.run_id) and previous.get("tracking_uri") == uri:
        _close_if_running(earlier, folder)
    marker_text = {"run_id": run.info.run_id, "step": step, "tracking_uri": uri}
    atomic_write_text(marker, json.dumps(marker_text) + "\n")
    return marker


def _read(marker: Path) -> dict:
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _close_if_running(run_id: str, folder: str | Path) -> None:
    client = mlflow.MlflowClient()
    try:
        status = client.get_run(run_id).info.status
        if status == RunStatus.to_string(RunStatus.RUNNING):
            client.set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))
            log.warning(
                "MLflow run %s, an earlier writer of %s, never finished (its process died); "
                "marked KILLED",
                run_id,
                folder,
            )
    except MlflowException as err:  # deleted meanwhile, or another store: nothing to close
        log.debug("cannot check earlier run %s: %s", run_id, err.message)
