"""Open or join the MLflow run of one step, and log into it.

Which run a step writes to, in order of precedence:

1. A run already active in this process (a step inside a step): a nested child run of it.
2. ``MLFLOW_RUN_ID`` set (KFP 2.17 injects it into each task): join that run.
3. ``VIDEOLLM_PARENT_RUN_ID`` set: a nested child run under it, in the parent's experiment
   (pipeline runs nest step runs).
4. Otherwise a new run in ``experiment`` / ``MLFLOW_EXPERIMENT_NAME`` / ``videollm``.

Every run gets the tag ``videollm.step=<step>``. Environment variables are never logged.
"""

from __future__ import annotations

import logging
import os
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mlflow
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_DATASET_DIGEST_SIZE

from videollm.errors import TrackingError
from videollm.tracking.params import flatten_params
from videollm.tracking.store import connect, ensure_experiment, experiment_name, redact_uri

log = logging.getLogger(__name__)

STEP_TAG = "videollm.step"
PARENT_ENV = "VIDEOLLM_PARENT_RUN_ID"
RUN_ID_ENV = "MLFLOW_RUN_ID"
_PARAM_BATCH = 100  # MLflow's per-request limit on params in log_batch.


def _new_params(client: MlflowClient, run_id: str, params: dict[str, str]) -> dict[str, str]:
    """Params not yet on ``run_id``; MLflow params are immutable, so a rejoin must skip them."""
    existing = client.get_run(run_id).data.params
    for key in sorted(k for k in params if k in existing and existing[k] != params[k]):
        log.warning("run %s already has param %s=%r; keeping it", run_id, key, existing[key])
    return {k: v for k, v in params.items() if k not in existing}


def _log_params(params: dict[str, str]) -> None:
    items = list(params.items())
    for start in range(0, len(items), _PARAM_BATCH):
        mlflow.log_params(dict(items[start : start + _PARAM_BATCH]))


def _run_name(step: str) -> str:
    # Unique, readable names: runs of one step stay distinguishable in tables and the UI.
    return f"{step}-{uuid.uuid4().hex[:6]}"


@contextmanager
def _hidden_env(name: str) -> Iterator[None]:
    """Hide an env var for a moment: start_run() would read MLFLOW_RUN_ID and join, not nest."""
    value = os.environ.pop(name, None)
    try:
        yield
    finally:
        if value is not None:
            os.environ[name] = value


def _start(
    client: MlflowClient,
    step: str,
    experiment: str | None,
    tags: dict[str, str],
    log_system_metrics: bool,
) -> tuple[mlflow.ActiveRun, bool]:
    """Start/join the run; return it and whether it already existed."""
    active = mlflow.active_run()
    joined = os.environ.get(RUN_ID_ENV, "").strip()
    if joined and active is None:
        # Pass the id explicitly: start_run() would otherwise *delete* MLFLOW_RUN_ID from the
        # environment, and a second step in the same process would then open a stray run.
        run = mlflow.start_run(run_id=joined, tags=tags, log_system_metrics=log_system_metrics)
        return run, True
    # A step inside a step nests under the open run (MLflow requires the innermost parent).
    parent = active.info.run_id if active else os.environ.get(PARENT_ENV, "").strip()
    if parent:
        exp_id = client.get_run(parent).info.experiment_id
        with _hidden_env(RUN_ID_ENV):
            run = mlflow.start_run(
                experiment_id=exp_id,
                run_name=_run_name(step),
                parent_run_id=parent,
                nested=active is not None,
                tags=tags,
                log_system_metrics=log_system_metrics,
            )
        return run, False
    exp_id = ensure_experiment(client, experiment_name(experiment))
    run = mlflow.start_run(
        experiment_id=exp_id,
        run_name=_run_name(step),
        tags=tags,
        log_system_metrics=log_system_metrics,
    )
    return run, False


def _end(status: int) -> None:
    # end_run() unsets MLFLOW_RUN_ID; put an injected id back so later steps still join it.
    injected = os.environ.get(RUN_ID_ENV)
    mlflow.end_run(RunStatus.to_string(status))
    if injected:
        os.environ[RUN_ID_ENV] = injected


@contextmanager
def step_run(
    step: str,
    params: Mapping[str, Any] | Any,
    experiment: str | None = None,
    tags: Mapping[str, Any] | None = None,
    log_system_metrics: bool = False,
) -> Iterator[mlflow.ActiveRun]:
    """Open (or join) the MLflow run for one step; end it FINISHED, FAILED or KILLED on exit.

    Args:
        step: step name (``extract``, ``train`` ...), stored as tag ``videollm.step``.
        params: resolved config (mapping or dataclass, may nest); logged flattened.
        experiment: experiment for a new top-level run; default ``MLFLOW_EXPERIMENT_NAME``
            or ``videollm``. Ignored when joining or nesting.
        tags: extra run tags.
        log_system_metrics: sample CPU/GPU/memory into the run (MLflow's monitor thread).

    Yields:
        The active run.

    Raises:
        TrackingError: when the tracking store is unreachable or refuses the run.
    """
    client = connect()
    all_tags = {**{k: str(v) for k, v in (tags or {}).items()}, STEP_TAG: step}
    uri = redact_uri(client.tracking_uri)
    try:
        run, existed = _start(client, step, experiment, all_tags, log_system_metrics)
    except MlflowException as err:
        msg = f"cannot start MLflow run for {step!r} at {uri}: {err.message}"
        raise TrackingError(msg) from err
    run_id = run.info.run_id
    try:
        flat = flatten_params(params)
        _log_params(_new_params(client, run_id, flat) if existed else flat)
    except MlflowException as err:
        _end(RunStatus.FAILED)
        raise TrackingError(f"cannot log params of {step!r} to {uri}: {err.message}") from err
    how = "joined" if existed else "new"
    log.info("MLflow run %s (%s) for step %s at %s", run_id, how, step, uri)
    try:
        yield run
    except KeyboardInterrupt:
        # Ctrl-C is the user stopping the run, not the run failing: MLflow's KILLED says so.
        _end(RunStatus.KILLED)
        raise
    except BaseException:
        _end(RunStatus.FAILED)
        raise
    # A joined run is ended too, so `select` (which reads FINISHED runs) can see it.
    _end(RunStatus.FINISHED)


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Log numeric metrics to the active run; non-numeric values are skipped with a warning.

    Args:
        metrics: name → value (``bool``/``int``/``float``).
        step: training step, if the metrics form a curve.
    """
    clean: dict[str, float] = {}
    for key, value in metrics.items():
        try:
            clean[key] = float(value)
        except (TypeError, ValueError):
            log.warning("metric %s=%r is not a number; not logged", key, value)
    if clean:
        mlflow.log_metrics(clean, step=step)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    """Upload a file or a whole folder to the active run's artifacts."""
    path = Path(path)
    if path.is_dir():
        mlflow.log_artifacts(str(path), artifact_path=artifact_path)
    else:
        mlflow.log_artifact(str(path), artifact_path=artifact_path)


def log_text(text: str, name: str) -> None:
    """Store ``text`` as artifact file ``name`` (e.g. ``reports/samples.md``)."""
    mlflow.log_text(text, name)


def _dataset_source(uri: str) -> Any:
    parts = urlsplit(uri)
    if parts.scheme == "minio":
        uri = "s3" + uri[len("minio") :]  # Same bucket/key layout; MLflow knows it as S3.
    elif not parts.scheme:
        uri = str(Path(uri).resolve())
    with warnings.catch_warnings():
        # Local paths match two equivalent resolvers; MLflow warns about the tie.
        warnings.simplefilter("ignore", UserWarning)
        try:
            return resolve_dataset_source(uri)
        except MlflowException as err:
            raise TrackingError(f"cannot log dataset at {uri}: {err.message}") from err


def log_dataset(uri: str, name: str, digest: str | None, context: str) -> None:
    """Record a dataset (by URI, not content) as an input of the active run.

    Args:
        uri: where the data lives: local path, ``s3://``/``minio://``, ``gs://``, ``http(s)://``.
        name: dataset name shown in the UI (e.g. ``records/train``).
        digest: content hash (e.g. sha256 of ``manifest.jsonl``); cut to MLflow's 36
            characters. MLflow derives one from name and URI when ``None``.
        context: role of the data, e.g. ``training``, ``validation``, ``features``.

    Raises:
        TrackingError: for a URI scheme MLflow cannot describe.
    """
    short = digest[:MAX_DATASET_DIGEST_SIZE] if digest else None
    dataset = MetaDataset(_dataset_source(uri), name=name, digest=short)
    try:
        mlflow.log_input(dataset, context=context)
    except MlflowException as err:
        # Parallel tasks (extract shards) logging the same dataset race to create its row; the
        # loser's insert breaks a unique constraint and rolls back. The row exists now, so a
        # second try links it. Any other error fails again and is raised.
        log.debug("retrying log_input of %s after %s", name, err.message)
        mlflow.log_input(dataset, context=context)


def rename_active_run(name: str) -> None:
    """Give the open run a readable name (what tables of runs and the MLflow UI show)."""
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    mlflow.set_tag(MLFLOW_RUN_NAME, name)


def active_run_id() -> str | None:
    """The id of this process's active MLflow run, if any."""
    run = mlflow.active_run()
    return run.info.run_id if run else None
