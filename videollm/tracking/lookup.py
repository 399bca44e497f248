"""Read from MLflow what other layers need: registry versions, champions, a checkpoint's run.

Every query goes through :func:`~videollm.tracking.store.connect`, so an unreachable server or
a refused login fails with a message that names the setting to fix.
"""

from __future__ import annotations

import logging
import os

from mlflow.exceptions import MlflowException

from videollm.errors import VideoLLMError
from videollm.tracking.search import search_finished
from videollm.tracking.select import CHECKPOINT_TAG
from videollm.tracking.store import connect, experiment_name

logger = logging.getLogger(__name__)


def registry_version(model_uri: str) -> dict[str, str]:
    """Name, version, run id and source of ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.

    Raises:
        VideoLLMError: ``model_uri`` is malformed or names no registered version.
    """
    if not model_uri.startswith("models:/"):
        raise VideoLLMError(f"--model-uri {model_uri!r} must look like models:/NAME@ALIAS")
    ref = model_uri[len("models:/") :]
    client = connect()  # a refused MLflow login fails here, naming MLFLOW_TRACKING_USERNAME
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            version = client.get_model_version_by_alias(name, alias)
        else:
            name, number = ref.rsplit("/", 1)
            version = client.get_model_version(name, number)
    except MlflowException as err:
        raise VideoLLMError(f"cannot resolve {model_uri}: {err.message}") from err
    # Not version.source: a storage URI, possibly presigned or with credentials in it.
    logger.info("%s is version %s of %s (run %s)", model_uri, version.version, name, version.run_id)
    return {
        "mlflow_model": name,
        "mlflow_version": str(version.version),
        "mlflow_run_id": version.run_id or "",
        "mlflow_source": version.source,
    }


def champion_summary(model_name: str, alias: str = "champion") -> dict[str, str]:
    """The registry's ``alias`` version of ``model_name``: version, run and checkpoint
    (empty when there is none)."""
    client = connect()  # MLFLOW_TRACKING_URI now, not a URI set earlier in this process
    try:
        version = client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return {}
    run = client.get_run(version.run_id) if version.run_id else None
    return {
        "model_uri": f"models:/{model_name}@{alias}",
        "version": str(version.version),
        "run_id": version.run_id or "",
        "run_name": run.data.tags.get("mlflow.runName", "") if run else "",
        "experiment_id": run.info.experiment_id if run else "",
        "checkpoint": version.source,
    }


def latest_trained_run(experiment: str) -> dict[str, str]:
    """The newest finished run of ``experiment`` that names a checkpoint: a train run."""
    for run in search_finished(connect(), experiment, limit=100):
        if CHECKPOINT_TAG in run.data.tags:
            return {
                "run_id": run.info.run_id,
                "run_name": run.data.tags.get("mlflow.runName", ""),
                "checkpoint": run.data.tags[CHECKPOINT_TAG],
            }
    return {}


def checkpoint_metrics(checkpoint_uri: str) -> dict[str, float]:
    """Final metrics of the newest MLflow run that wrote ``checkpoint_uri`` (empty if none)."""
    client = connect()
    experiment = client.get_experiment_by_name(experiment_name())
    if experiment is None:
        return {}
    uri = checkpoint_uri if "://" in checkpoint_uri else os.path.abspath(checkpoint_uri)
    runs = client.search_runs(
        [experiment.experiment_id],
        f"tags.`{CHECKPOINT_TAG}` = '{uri}'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return dict(runs[0].data.metrics) if runs else {}


def log_metrics_to_run(run_id: str, metrics: dict[str, float]) -> None:
    """Record ``metrics`` on another run (an evaluation's results on its training run)."""
    client = connect()
    for key, value in metrics.items():
        client.log_metric(run_id, key, float(value))
