"""Read runs of an experiment back from MLflow (shared by ``select`` and ``runs compare``)."""

from __future__ import annotations

import logging
from typing import Literal

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from videollm.errors import TrackingError
from videollm.tracking.store import redact_uri

log = logging.getLogger(__name__)

Mode = Literal["max", "min"]
_PAGE = 1000  # MLflow's maximum page size for search_runs.
# Metric-name fragments for which smaller is better, used when no mode is given.
_LOWER_IS_BETTER = ("loss", "error", "perplexity", "wer", "cer", "latency", "time")


def guess_mode(metric: str) -> Mode:
    """``min`` for loss/error-like metric names, else ``max``.

    Only the last part of a ``/``-separated name counts: ``bench/realtime-qa/score`` is a
    score, whatever its suite is called.
    """
    name = metric.lower().rsplit("/", 1)[-1]
    return "min" if any(part in name for part in _LOWER_IS_BETTER) else "max"


def experiment_id(client: MlflowClient, experiment: str) -> str:
    """Id of an existing experiment.

    Raises:
        TrackingError: when it does not exist or the server cannot be read.
    """
    uri = redact_uri(client.tracking_uri)
    try:
        found = client.get_experiment_by_name(experiment)
    except MlflowException as err:
        raise TrackingError(
            f"cannot read experiment {experiment!r} at {uri}: {err.message}"
        ) from err
    if found is None:
        raise TrackingError(f"no experiment named {experiment!r} at {uri}")
    return str(found.experiment_id)


def search_finished(
    client: MlflowClient,
    experiment: str,
    limit: int | None = None,
    order_by: list[str] | None = None,
) -> list[Run]:
    """All FINISHED, non-deleted runs of ``experiment`` (paged), newest first by default.

    Args:
        client: connected client.
        experiment: experiment name.
        limit: stop after this many runs; ``None`` reads them all.
        order_by: MLflow ``order_by`` clauses.

    Returns:
        The runs.

    Raises:
        TrackingError: when the experiment is missing or the search fails.
    """
    exp_id = experiment_id(client, experiment)
    runs: list[Run] = []
    token: str | None = None
    try:
        while True:
            page = client.search_runs(
                [exp_id],
                filter_string="attributes.status = 'FINISHED'",
                max_results=_PAGE if limit is None else min(_PAGE, limit - len(runs)),
                order_by=order_by or ["attributes.start_time DESC"],
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token or (limit is not None and len(runs) >= limit):
                return runs
    except MlflowException as err:
        uri = redact_uri(client.tracking_uri)
        raise TrackingError(
            f"cannot search runs of {experiment!r} at {uri}: {err.message}"
        ) from err


def is_better(value: float, than: float | None, mode: Mode) -> bool:
    """Whether ``value`` strictly beats ``than`` (``None`` is beaten by anything)."""
    if than is None:
        return True
    return value > than if mode == "max" else value < than
