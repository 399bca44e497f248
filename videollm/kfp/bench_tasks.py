"""What the ``benchmark`` pipeline's tasks do, as plain functions a test can call.

    plan_benchmark ──► extract_benchmark (one per distinct feature settings)
                   ──► score_benchmark (champion) ┐
                   ──► score_benchmark (challenger)┴─► compare_benchmarks

The plan reads each model's extraction settings from its checkpoint, so models that share an
encoder share one extract task and one features folder (``<work_uri>/benchmark-features/<key>``,
keyed like ``videollm benchmark``'s). The scoring tasks only read those features: no encoder,
no write lock, so both models score at once.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from videollm.atomic import atomic_write_text
from videollm.bench.features import extract_features, feature_settings
from videollm.bench.report import comparison_markdown, results_markdown
from videollm.bench.run import resolve_checkpoint, run_benchmark, suite_metrics
from videollm.bench.suite import BenchConfig, benchmark_items, load_suite
from videollm.config_loader import from_dict
from videollm.errors import ConfigError
from videollm.features.extract_config import ExtractConfig
from videollm.kfp.task_io import TaskResult, whole_numbers
from videollm.model.model_config import CONFIG_FILE, CheckpointConfig
from videollm.storage import join
from videollm.storage.staging import stage_in, stage_out

logger = logging.getLogger(__name__)

#: Labels of the two models the pipeline scores (its report's columns and metric prefixes).
CHAMPION, CHALLENGER = "champion", "challenger"


def model_flags(model: str) -> dict[str, str]:
    """A model reference as suite settings: ``models:/...`` is a registry URI, else a
    checkpoint folder or prefix."""
    return {"model_uri": model} if model.startswith("models:/") else {"checkpoint": model}


def _suite(suite_uri: str, overrides: list[str], **flags: Any) -> BenchConfig:
    # `out` is checked by load_suite; the tasks that write set their own.
    return load_suite(suite_uri, [str(o) for o in overrides], flags={"out": "-", **flags})


def checkpoint_extract_config(checkpoint_uri: str) -> ExtractConfig:
    """How a checkpoint's features were extracted, read from its config file alone."""
    local = stage_in(checkpoint_uri, keep=lambda rel: rel == CONFIG_FILE)
    return from_dict(ExtractConfig, dict(CheckpointConfig.load(local).extract))


def plan_benchmark(
    suite_uri: str, suite_overrides: list[str], models: dict[str, str]
) -> list[dict[str, Any]]:
    """Check the suite and the models up front; return the distinct feature settings.

    Args:
        suite_uri: The suite YAML (local or ``s3://``).
        suite_overrides: ``key=value`` overrides of the suite (e.g. ``judge.url=...``).
        models: Label → model (``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or a
            checkpoint URI).

    Returns:
        One dict of extraction settings per extract task to run (models with the same
        encoder, layer, frames and pooling share one).

    Raises:
        ConfigError: The suite is invalid, or a model is missing or cannot be resolved.
    """
    settings: list[dict[str, Any]] = []
    for label, model in models.items():
        if not model:
            raise ConfigError(f"{label}_uri: required (models:/NAME@ALIAS or a checkpoint)")
        checkpoint, _ = resolve_checkpoint(_suite(suite_uri, suite_overrides, **model_flags(model)))
        # Unset ones (None) left out: KFP cannot pass a null; the extract task's defaults
        # fill them in again.
        found = feature_settings(checkpoint_extract_config(checkpoint))
        wanted = {k: v for k, v in found.items() if v is not None}
        logger.info("%s %s extracts with %s", label, model, wanted)
        if wanted not in settings:
            settings.append(wanted)
    return settings


def extract_benchmark(
    suite_uri: str, suite_overrides: list[str], settings: dict[str, Any], features_root: str
) -> TaskResult:
    """Extract the features of every video the suite asks about, with ``settings``.

    Returns:
        ``features_root``, with counts of videos that have features and that failed.
    """
    # A placeholder model: this task reads the suite's files only and scores nothing.
    cfg = _suite(suite_uri, suite_overrides, checkpoint="-")
    extract_cfg = from_dict(ExtractConfig, whole_numbers(dict(settings)))
    needed: dict[str, set[str]] = {}
    for spec in cfg.benchmarks:
        needed.setdefault(spec.videos, set()).update(it["video"] for it in benchmark_items(spec))
    lines = ["## Benchmark features", "", "| videos | needed | with features | failed |"]
    lines.append("|---|---|---|---|")
    total = {"videos": 0.0, "with_features": 0.0, "failed": 0.0}
    for videos_uri, ids in needed.items():
        feats = extract_features(videos_uri, ids, extract_cfg, features_root)
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
    out_uri: str,
    features_root: str,
    gpus: int | str = 0,
) -> TaskResult:
    """Score one model on the suite from the extract tasks' features (one MLflow run).

    Returns:
        ``out_uri`` (``results.json``, ``results.md``, predictions), the suite's metrics and
        ``results.md`` as the report.

    Raises:
        ConfigError: ``gpus`` is neither 0 nor 1.
    """
    if str(gpus).strip() not in ("0", "1"):
        raise ConfigError(f"eval_gpus: 0 (CPU) or 1 (one GPU), got {gpus!r}")
    flags = {
        **model_flags(model),
        "out": out_uri,
        "features_root": features_root,
        "extract": False,
        "device": "cuda" if str(gpus).strip() == "1" else "cpu",
    }
    cfg = load_suite(suite_uri, [str(o) for o in suite_overrides], flags=flags)
    data = run_benchmark(cfg)
    logger.info("%s %s: suite score %s", label, model, data["score"])
    return TaskResult(out_uri, suite_metrics(data), results_markdown(data), {"label": label})


def compare_benchmarks(results: dict[str, str], out_uri: str) -> TaskResult:
    """The side-by-side report of the scored models, also kept as ``out_uri/comparison.md``.

    Args:
        results: Label → the ``out_uri`` its scoring task wrote.
        out_uri: Folder or prefix for ``comparison.md``.

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
    with stage_out(out_uri) as local:
        atomic_write_text(local / "comparison.md", report)
    return TaskResult(join(out_uri, "comparison.md"), metrics, report)


def _results(out_uri: str) -> dict[str, Any]:
    return json.loads(stage_in(join(out_uri, "results.json")).read_text())
