"""``videollm benchmark``: score one model on a suite of benchmarks, on one MLflow run.

For each benchmark of the suite: read its published files (:mod:`videollm.bench.formats`),
stage the videos it names, ask the model every question (:mod:`videollm.bench.answer`), score
the answers (:mod:`videollm.bench.score`) and write ``<out>/<name>/predictions.jsonl``. Then
``results.json`` and ``results.md`` for the whole suite, all logged to one MLflow run named
``benchmark-<model>-<suite>``; a checkpoint's metrics also go on its training run, so
``videollm select --metric bench/<suite>/score`` ranks checkpoints by the suite.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from videollm.atomic import atomic_write_text
from videollm.bench.answer import CheckpointAnswerer, EndpointAnswerer, asks_of, rows_of
from videollm.bench.report import results_json, results_markdown
from videollm.bench.score import BenchmarkResult, headline, score_benchmark
from videollm.bench.suite import BenchConfig, BenchmarkSpec, benchmark_items, check_config
from videollm.config_loader import to_dict
from videollm.eval.judge_cache import JudgeCache
from videollm.storage import join
from videollm.storage.staging import cache_dir, stage_in, stage_out
from videollm.tracking import log_artifact, log_metrics, log_text, step_run
from videollm.tracking.lookup import log_metrics_to_run, registry_version
from videollm.tracking.runs import rename_active_run

logger = logging.getLogger(__name__)

#: Tags of a benchmark run: the suite, and (as on evaluate runs) what was scored.
SUITE_TAG = "videollm.suite"
MODEL_TAG = "videollm.model"


def _model_label(cfg: BenchConfig) -> str:
    """A short name of the scored model for run names: ``NAME-vN``, a folder name, a model."""
    if cfg.model_uri:
        return cfg.model_uri[len("models:/") :].replace("@", "-").replace("/", "-v")
    if cfg.checkpoint:
        return Path(cfg.checkpoint.rstrip("/")).name
    return cfg.endpoint.model.rsplit("/", 1)[-1]


def _load_model(cfg: BenchConfig) -> tuple[Any, str | None]:
    """The answerer, and the training run of a checkpoint (to log the suite score on)."""
    if cfg.endpoint.url:
        return EndpointAnswerer(cfg.endpoint, cfg.generation), None
    from videollm.eval.evaluate import check_device
    from videollm.model.video_llm import VideoLLM
    from videollm.steps import training_run_of

    train_run = None
    if cfg.model_uri:
        version = registry_version(cfg.model_uri)
        local = stage_in(version["mlflow_source"])
        train_run = version["mlflow_run_id"] or None
    else:
        local = stage_in(cfg.checkpoint)
    train_run = train_run or training_run_of(local)
    check_device(cfg.device)
    model = VideoLLM.from_checkpoint(local, device=cfg.device)
    root = cfg.features_root or str(cache_dir("benchmark-features").parent / "benchmark-features")
    answerer = CheckpointAnswerer(model, root, cfg.batch_size, cfg.generation, cfg.extract)
    return answerer, train_run


def _one(
    spec: BenchmarkSpec, answerer: Any, cfg: BenchConfig, cache: JudgeCache | None, out: Path
) -> BenchmarkResult:
    items = benchmark_items(spec)
    asks = asks_of(items)
    logger.info("%s (%s): %d questions", spec.name, spec.format, len(items))
    preds, failures = answerer.answer(asks, spec.videos)
    answered = [it for it in items if it["id"] in preds]
    rows = rows_of(answered, preds)
    folder = out / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "predictions.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    if failures:
        atomic_write_text(
            folder / "failures.jsonl", "".join(json.dumps(f) + "\n" for f in failures)
        )
    scored = score_benchmark(spec, rows, cfg.judge, cache)
    return BenchmarkResult(spec.name, spec.format, headline(spec), len(rows), scored.metrics,
                           scored.judge, skipped=len(items) - len(rows))  # fmt: skip


def benchmark(cfg: BenchConfig) -> dict[str, Any]:
    """Score the model on every benchmark of the suite into ``cfg.out`` (a local folder).

    Returns:
        ``results.json``'s content: the suite score and each benchmark's metrics and judge.

    Raises:
        ConfigError: The suite or the settings are invalid (:func:`check_config`).
        InputError: A benchmark file is malformed (the message names file, line and field).
        JudgeAuthError, EndpointError: The judge or the endpoint refused or is unreachable.
    """
    check_config(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    answerer, _ = _load_model(cfg)
    results = _score_all(cfg, answerer, out)
    return _write(cfg, results, out)


def _score_all(cfg: BenchConfig, answerer: Any, out: Path) -> list[BenchmarkResult]:
    needs_judge = bool(cfg.judge.url)
    cache = (
        JudgeCache.open(cfg.judge.cache or str(out / "judge_cache.jsonl")) if needs_judge else None
    )
    try:
        return [_one(spec, answerer, cfg, cache, out) for spec in cfg.benchmarks]
    finally:
        if cache is not None:
            cache.close()


def _write(cfg: BenchConfig, results: list[BenchmarkResult], out: Path) -> dict[str, Any]:
    data = results_json(cfg.name, cfg.source(), results)
    atomic_write_text(out / "results.json", json.dumps(data, indent=2) + "\n")
    atomic_write_text(out / "results.md", results_markdown(data))
    logger.info("suite %s: score %s", cfg.name, data["score"])
    return data


def suite_metrics(data: dict[str, Any]) -> dict[str, float]:
    """MLflow metrics of a results dict: ``bench/<suite>/score`` and
    ``bench/<benchmark>/<metric>`` for every benchmark metric."""
    out = {f"bench/{data['suite']}/score": data["score"]} if data["score"] is not None else {}
    for b in data["benchmarks"]:
        out |= {f"bench/{b['name']}/{k}": float(v) for k, v in b["metrics"].items()}
    return out


def run_benchmark(cfg: BenchConfig) -> dict[str, Any]:
    """:func:`benchmark` with ``cfg.out`` local or ``s3://``, recorded as one MLflow run.

    The run is named ``benchmark-<model>-<suite>-<id>``, tagged with the suite and the model,
    holds every metric (:func:`suite_metrics`), ``results.md``/``results.json`` and each
    benchmark's predictions, and the judge as params (``judge.model``, ``judge.served_model``).
    A checkpoint's or registered model's metrics also go on its training run.
    """
    check_config(cfg)
    tags = {SUITE_TAG: cfg.name, MODEL_TAG: cfg.source()}
    with step_run("benchmark", to_dict(cfg), tags=tags) as run:
        rename_active_run(f"benchmark-{_model_label(cfg)}-{cfg.name}-{run.info.run_id[:6]}")
        answerer, train_run = _load_model(cfg)
        with stage_out(cfg.out) as local_out:
            results = _score_all(cfg, answerer, local_out)
            data = _write(cfg, results, local_out)
        metrics = suite_metrics(data)
        log_metrics(metrics)
        log_text((local_out / "results.md").read_text(), "results.md")
        log_artifact(local_out / "results.json")
        for spec in cfg.benchmarks:
            log_artifact(local_out / spec.name / "predictions.jsonl", f"predictions/{spec.name}")
        judges = {r.judge.get("served_model") or r.judge.get("model") for r in results if r.judge}
        if judges:
            log_text("\n".join(sorted(str(j) for j in judges)) + "\n", "judges.txt")
        if train_run:
            log_metrics_to_run(train_run, metrics)
    logger.info("results: %s", join(cfg.out, "results.md"))
    return data
