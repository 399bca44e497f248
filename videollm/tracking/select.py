"""Pick the best finished run and make its checkpoint the registry's ``champion``.

A run is a candidate when it is FINISHED, has the metric, and names its checkpoint: the tag
``videollm.checkpoint_uri`` (set by the train step), or else the param ``checkpoint_uri``.
The checkpoint is registered with ``create_model_version`` (``register_model`` rejects plain
folders that are not MLflow logged models in MLflow 3). The alias moves only when the best
run strictly beats the current champion's run on the metric, so a better champion is never
demoted, and a run that already has a version is not registered twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from videollm.errors import TrackingError
from videollm.tracking.search import Mode, is_better, search_finished
from videollm.tracking.store import connect, redact_uri
from videollm.tracking.table import format_table

log = logging.getLogger(__name__)

CHECKPOINT_TAG = "videollm.checkpoint_uri"
TOP_N = 10

__all__ = ["CHECKPOINT_TAG", "Candidate", "SelectResult", "format_table", "select_champion"]


@dataclass(frozen=True)
class Candidate:
    """A run that can be champion."""

    run_id: str
    run_name: str
    value: float
    checkpoint_uri: str


@dataclass(frozen=True)
class SelectResult:
    """Outcome of :func:`select_champion`.

    Attributes:
        model_name: registered model.
        alias: alias that marks the champion.
        metric: metric compared.
        best: best candidate run, ``None`` when there was none.
        version: model version of the best run (new or reused), ``None`` without a best run.
        promoted: whether the alias moved to ``version`` in this call.
        previous_version: version the alias pointed to before, if any.
        previous_value: that version's run metric, if known.
        champion_run_id: run behind the alias after this call, if any.
        top: best candidates, best first (at most ``TOP_N``).
    """

    model_name: str
    alias: str
    metric: str
    best: Candidate | None
    version: str | None
    promoted: bool
    previous_version: str | None = None
    previous_value: float | None = None
    champion_run_id: str | None = None
    top: list[Candidate] = field(default_factory=list)

    @property
    def champion_version(self) -> str | None:
        """Version the alias points to after this call."""
        return self.version if self.promoted else self.previous_version

    def rows(self) -> list[dict[str, Any]]:
        """Top candidates as table rows, the champion's run marked ``*``."""
        champ_run = self.champion_run_id
        return [
            {
                "rank": i,
                "run": c.run_name,
                "run_id": c.run_id[:8],
                self.metric: c.value,
                "checkpoint": c.checkpoint_uri,
                "champion": "*" if c.run_id == champ_run else "",
            }
            for i, c in enumerate(self.top, start=1)
        ]

    def table(self) -> str:
        """The top candidates as a plain-text table."""
        return format_table(self.rows())


def _candidate(run: Run, metric: str, checkpoint_param: str) -> Candidate | None:
    value = run.data.metrics.get(metric)
    uri = run.data.tags.get(CHECKPOINT_TAG) or run.data.params.get(checkpoint_param)
    if value is None or not uri:
        return None
    name = run.data.tags.get("mlflow.runName", run.info.run_id)
    return Candidate(run.info.run_id, name, float(value), uri)


def _current_champion(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def _run_metric(client: MlflowClient, run_id: str | None, metric: str) -> float | None:
    if not run_id:
        return None
    try:
        value = client.get_run(run_id).data.metrics.get(metric)
    except MlflowException:
        log.warning("champion's run %s is gone; treating the champion as unscored", run_id)
        return None
    return None if value is None else float(value)


def _version_for(client: MlflowClient, name: str, best: Candidate, metric: str) -> ModelVersion:
    """The model version of ``best``'s run and checkpoint, registering it when missing."""
    for mv in client.search_model_versions(f"name = '{name}' and run_id = '{best.run_id}'"):
        if mv.source == best.checkpoint_uri:
            return mv
    try:
        client.get_registered_model(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(name, description="videollm checkpoints")
    tags = {"videollm.metric": metric, "videollm.metric_value": repr(best.value)}
    return client.create_model_version(
        name, source=best.checkpoint_uri, run_id=best.run_id, tags=tags
    )


def select_champion(
    experiment: str,
    metric: str,
    mode: Mode,
    model_name: str,
    alias: str = "champion",
    checkpoint_param: str = "checkpoint_uri",
) -> SelectResult:
    """Register the best run's checkpoint and move ``alias`` to it if it beats the champion.

    Args:
        experiment: experiment whose FINISHED runs compete.
        metric: metric to compare (e.g. ``val/exact_match``).
        mode: ``max`` or ``min`` (which direction is better).
        model_name: registered model name.
        alias: alias marking the champion.
        checkpoint_param: param naming the checkpoint when tag ``videollm.checkpoint_uri``
            is absent.

    Returns:
        What was chosen, registered and promoted, and the top-N table.

    Raises:
        TrackingError: unreachable server, missing experiment, or a registry refusal (for
            example a local checkpoint path sent to a remote server; use an ``s3://`` URI).
    """
    client = connect()
    runs = search_finished(client, experiment)
    found = [c for r in runs if (c := _candidate(r, metric, checkpoint_param)) is not None]
    found.sort(key=lambda c: c.value, reverse=mode == "max")
    base: dict[str, Any] = {"model_name": model_name, "alias": alias, "metric": metric}
    base["top"] = found[:TOP_N]
    try:
        champion = _current_champion(client, model_name, alias)
        base["previous_version"] = champion.version if champion else None
        base["previous_value"] = _run_metric(client, champion.run_id if champion else None, metric)
        base["champion_run_id"] = champion.run_id if champion else None
        if not found:
            log.warning("no finished run in %r has %s and a checkpoint", experiment, metric)
            return SelectResult(best=None, version=None, promoted=False, **base)
        best = found[0]
        if champion is not None and champion.run_id == best.run_id:
            return SelectResult(best=best, version=champion.version, promoted=False, **base)
        version = _version_for(client, model_name, best, metric)
        promoted = is_better(best.value, base["previous_value"], mode)
        if promoted:
            client.set_registered_model_alias(model_name, alias, version.version)
            base["champion_run_id"] = best.run_id
            log.info("%s@%s -> version %s (%s=%g)", model_name, alias, version.version, metric,
                     best.value)  # fmt: skip
        else:
            log.info("best run %s (%g) does not beat champion v%s (%s); alias kept",
                     best.run_id, best.value, base["previous_version"],
                     base["previous_value"])  # fmt: skip
    except MlflowException as err:
        uri = redact_uri(client.tracking_uri)
        raise TrackingError(f"registry at {uri} refused {model_name!r}: {err.message}") from err
    return SelectResult(best=best, version=version.version, promoted=promoted, **base)
