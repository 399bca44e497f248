"""What the ``benchmark`` pipeline's tasks do, as plain functions a test can call.

    plan_benchmark ──► extract_benchmark (one per distinct feature settings)
                   ──► score_benchmark (champion) ┐
                   ──► score_benchmark (challenger)┴─► compare_benchmarks

The plan pins each model (an alias becomes the version it names now, which the scoring tasks
then use) and reads its extraction settings from its checkpoint, so models that share an
encoder share one extract task and one features folder (``<work_uri>/benchmark-features/<key>``,
keyed like ``videollm benchmark``'s). The scoring tasks only read those features: no encoder,
no write lock, so both models score at once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from videollm.atomic import atomic_write_text
from videollm.bench.features import clips_of, extract_features, feature_id, feature_settings
from videollm.bench.report import comparison_markdown, results_markdown
from videollm.bench.run import run_benchmark, suite_metrics
from videollm.bench.suite import BenchConfig, benchmark_items, load_suite
from videollm.config_loader import from_dict
from videollm.errors import ConfigError
from videollm.features.extract_config import ExtractConfig
from videollm.kfp.task_io import TaskResult, single_uri, whole_numbers
from videollm.kfp.work_dirs import benchmark_features_root, work_dir, work_root
from videollm.model.model_config import CONFIG_FILE, CheckpointConfig
from videollm.storage import join
from videollm.storage.staging import stage_in, stage_out
from videollm.tracking.lookup import registry_version

logger = logging.getLogger(__name__)

#: Labels of the two models the pipeline scores (its report's columns and metric prefixes).
CHAMPION, CHALLENGER = "champion", "challenger"


def model_flags(model: str) -> dict[str, str]:
    """A model reference as suite settings: ``models:/...`` is a registry URI, else a
    checkpoint folder or prefix."""
    return {"model_uri": model} if model.startswith("models:/") else {"checkpoint": model}


def _suite(suite_uri: str, overrides: list[str], **flags: Any) -> BenchConfig:
    # `out` is checked by load_suite; the task that writes (scoring) sets its own.
    return load_suite(suite_uri, [str(o) for o in overrides], flags={"out": "-", **flags})


def checkpoint_extract_config(checkpoint_uri: str) -> ExtractConfig:
    """How a checkpoint's features were extracted, read from its config file alone."""
    local = stage_in(checkpoint_uri, keep=lambda rel: rel == CONFIG_FILE)
    return CheckpointConfig.load(local).extract_config()


@dataclass
class BenchPlan:
    """What the extract and scoring tasks are handed.

    Attributes:
        settings: One dict of extraction settings per extract task (models that extract
            alike share one).
        models: Label → the model pinned: ``models:/NAME@ALIAS`` resolved to
            ``models:/NAME/VERSION``, so an alias moved during the run changes nothing.
    """

    settings: list[dict[str, Any]]
    models: dict[str, str]


def pin_model(model: str) -> tuple[str, str]:
    """A model as the scoring tasks will take it, and its checkpoint's URI.

    A registry alias becomes the version it names now (``models:/NAME/VERSION``); a version
    or a checkpoint stays as it is.
    """
    if not model.startswith("models:/"):
        return model, model
    version = registry_version(model)
    pinned = f"models:/{version['mlflow_model']}/{version['mlflow_version']}"
    return pinned, version["mlflow_source"]


def plan_benchmark(
    suite_uri: str, suite_overrides: list[str], models: dict[str, str], gpus: int | str = 0
) -> BenchPlan:
    """Check the suite, the models and ``gpus`` up front; pin the models; plan extraction.

    Args:
        suite_uri: The suite YAML (local or ``s3://``).
        suite_overrides: ``key=value`` overrides of the suite (e.g. ``judge.url=...``).
        models: Label → model (``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or a
            checkpoint URI).
        gpus: The scoring tasks' GPUs (``eval_gpus``), checked here so a bad value fails
            before any extraction.

    Raises:
        ConfigError: The suite, ``gpus`` or a model is invalid, or a model is missing.
        VideoLLMError: A registry URI names no version.
    """
    check_gpus(gpus)
    for label, model in models.items():
        if not model:
            raise ConfigError(f"{label}_uri: required (models:/NAME@ALIAS or a checkpoint)")
    _suite(suite_uri, suite_overrides, **model_flags(next(iter(models.values()))))  # checked
    settings: list[dict[str, Any]] = []
    pinned: dict[str, str] = {}
    for label, model in models.items():
        pinned[label], checkpoint = pin_model(model)
        # Unset ones (None) left out: KFP cannot pass a null; the extract task's defaults
        # fill them in again.
        found = feature_settings(checkpoint_extract_config(checkpoint))
        wanted = {k: v for k, v in found.items() if v is not None}
        logger.info("%s %s (%s) extracts with %s", label, model, pinned[label], wanted)
        if wanted not in settings:
            settings.append(wanted)
    return BenchPlan(settings, pinned)


def check_gpus(gpus: int | str) -> str:
    """The scoring device for ``eval_gpus``: ``cuda`` for 1, ``cpu`` for 0.

    Raises:
        ConfigError: Anything else (one model replica uses one GPU).
    """
    value = str(gpus).strip()
    if value not in ("0", "1"):
        raise ConfigError(f"eval_gpus: 0 (CPU) or 1 (one GPU), got {gpus!r}")
    return "cuda" if value == "1" else "cpu"


def extract_benchmark(
    suite_uri: str, suite_overrides: list[str], settings: dict[str, Any], work_uri: str
) -> TaskResult:
    """Extract the features of every video the suite asks about, with ``settings``, under
    ``<work_uri>/benchmark-features/<key>``.

    Returns:
        The features root, with counts of the videos (and clips) needed, those that have
        features and those that failed.
    """
    features_root = benchmark_features_root(work_uri)
    # A placeholder model: this task reads the suite's files only and scores nothing.
    cfg = _suite(suite_uri, suite_overrides, checkpoint="-")
    extract_cfg = from_dict(ExtractConfig, whole_numbers(dict(settings)))
    items: dict[str, list[dict[str, Any]]] = {}
    for spec in cfg.benchmarks:
        items.setdefault(spec.videos, []).extend(benchmark_items(spec))
    lines = ["## Benchmark features", "", "| videos | needed | with features | failed |"]
    lines.append("|---|---|---|---|")
    total = {"videos": 0.0, "with_features": 0.0, "failed": 0.0}
    for videos_uri, asked in items.items():
        ids = {feature_id(it) for it in asked}
        feats = extract_features(videos_uri, ids, extract_cfg, features_root, clips_of(asked))
        done = sum(feats.has(v) for v in ids)
        lines.append(f"| {videos_uri} | {len(ids)} | {done} | {len(feats.failures)} |")
        total["videos"] += len(ids)
        total["with_features"] += done
        total["failed"] += len(feats.failures)
    return TaskResult(features_root, total, "\n".join(lines) + "\n")


def score_model(
    suite_uri: str,
    suite_overrides: list[str],
    model: str,
    label: str,
    features_roots: list[str],
    work_uri: str,
    run_id: str,
    gpus: int | str = 0,
) -> TaskResult:
    """Score one model on the suite from the extract tasks' features (one MLflow run).

    The results go to ``<work_uri>/<run_id>/benchmark/<label>``. Unless the suite sets
    ``judge.cache``, the judge's verdicts are kept in
    ``<work_uri>/benchmark-judge/<suite>-<label>.jsonl``, across runs: a model scored again
    costs no judge call for the answers it repeats.

    Args:
        features_roots: The extract tasks' outputs: one features root, named by each.

    Returns:
        The results prefix (``results.json``, ``results.md``, predictions), the suite's
        metrics and ``results.md`` as the report.

    Raises:
        ConfigError: ``gpus`` is neither 0 nor 1, or no extract task made the features this
            model needs.
    """
    out = join(work_dir(work_uri, run_id), "benchmark", label)
    cfg = _suite(
        suite_uri,
        suite_overrides,
        **model_flags(model),
        out=out,
        features_root=single_uri(features_roots),
        extract=False,
        device=check_gpus(gpus),
    )
    if not cfg.judge.cache:
        cache = f"{cfg.name}-{label}.jsonl"
        cfg.judge.cache = join(work_root(work_uri), "benchmark-judge", cache)
    data = run_benchmark(cfg)
    logger.info("%s %s: suite score %s", label, model, data["score"])
    return TaskResult(out, suite_metrics(data), results_markdown(data), {"label": label})


def compare_benchmarks(results: dict[str, str], work_uri: str, run_id: str) -> TaskResult:
    """The side-by-side report of the scored models, also kept as
    ``<work_uri>/<run_id>/benchmark/comparison.md``.

    Args:
        results: Label → the results prefix its scoring task wrote.

    Returns:
        Metrics ``<label>/<suite>/score`` and ``<label>/<benchmark>/<metric>`` for each
        model's headline metrics, and ``challenger_minus_champion`` when both are there.
    """
    runs = [(label, _results(uri)) for label, uri in results.items()]
    metrics: dict[str, float] = {}
    for label, data in runs:
        if data["score"] is not None:
            metrics[f"{label}/{data['suite']}/score"] = float(data["score"])
        for b in data["benchmarks"]:
            if b["value"] is not None:
                metrics[f"{label}/{b['name']}/{b['metric']}"] = float(b["value"])
    scores = {label: data["score"] for label, data in runs}
    if scores.get(CHAMPION) is not None and scores.get(CHALLENGER) is not None:
        metrics["challenger_minus_champion"] = scores[CHALLENGER] - scores[CHAMPION]
    report = comparison_markdown(runs)
    out = join(work_dir(work_uri, run_id), "benchmark")
    with stage_out(out) as local:
        atomic_write_text(local / "comparison.md", report)
    return TaskResult(join(out, "comparison.md"), metrics, report)


def _results(out_uri: str) -> dict[str, Any]:
    return json.loads(stage_in(join(out_uri, "results.json")).read_text())
