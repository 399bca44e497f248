"""The settings of ``videollm benchmark``: which model, which suite of benchmarks, which judge.

A suite file is YAML for :class:`BenchConfig`. It names its benchmarks, each with its
published format, its annotation file(s), its videos and an optional sample limit; it may also
set the judge and the decoding settings, and ``key=value`` overrides change any of it::

    name: zeroshot
    judge: {url: http://localhost:8001/v1, model: Qwen/Qwen2.5-7B-Instruct}
    benchmarks:
      - {name: msvd, format: msvd_qa, annotations: msvd/test_q.json,
         answers: msvd/test_a.json, videos: msvd/videos, limit: 500}
      - {name: mvbench, format: mvbench, annotations: mvbench/json, videos: mvbench/video}

Relative paths in a suite file are relative to the file (a local one, or an ``s3://`` object),
so a suite travels with its data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from videollm.config_loader import check_int, load_config
from videollm.errors import ConfigError
from videollm.eval.endpoint import EndpointConfig
from videollm.eval.generate import GenerationArgs
from videollm.eval.judge import JudgeConfig
from videollm.storage import is_remote, join
from videollm.storage.staging import stage_in

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class BenchmarkSpec:
    """One benchmark of a suite.

    Attributes:
        name: Short name, unique in the suite; the results table's row and the MLflow metric
            prefix (``bench/<name>/...``).
        format: Its published format (``videollm benchmark --help`` lists them): a
            multiple-choice format is scored without a judge, the others by the judge.
        annotations: The question file (or, for ``mvbench``, a folder of per-task files).
        answers: The answer file, for formats that publish answers apart (zero-shot QA).
        videos: Folder (or ``s3://`` prefix) of the benchmark's videos.
        limit: Score at most this many questions (0 = all): the first ``limit`` of the file.
        criteria: Judge criteria instead of the format's (e.g. ``[correctness]`` alone).
        bounds: Answer a question that gives ``start``/``end`` (MVBench's cut tasks) from
            that part of its video, as the published evaluator samples it; ``false`` for a
            copy whose videos are already cut to those parts (lmms-eval's ``*_segment``
            folders), where the whole file is the part.
    """

    name: str = ""
    format: str = ""
    annotations: str = ""
    answers: str = ""
    videos: str = ""
    limit: int = 0
    criteria: list[str] = field(default_factory=list)
    bounds: bool = True


@dataclass
class BenchConfig:
    """Settings of ``videollm benchmark``: the model, the suite and where results go.

    Attributes:
        name: The suite's name (default: the suite file's stem); runs are named after it.
        benchmarks: The benchmarks.
        checkpoint: A checkpoint folder or ``s3://`` prefix to score.
        model_uri: Or a registered model, ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.
        endpoint: Or a served model on an OpenAI-compatible endpoint (``endpoint.url``).
        out: Folder (or ``s3://`` prefix) for ``results.md``, ``results.json`` and each
            benchmark's ``<name>/predictions.jsonl``.
        features_root: Where the videos' features are kept, one folder per videos folder and
            extraction settings, so a second model with the same encoder reuses them
            (default ``$VIDEOLLM_CACHE_DIR/benchmark-features``).
        extract: Extract the features that are missing (``false``: only read those already
            under ``features_root``, as the ``benchmark`` pipeline's scoring tasks do after
            its extract task; questions about a video without features are skipped).
        batch_size: Questions generated together (checkpoint).
        device: ``auto``, ``cpu`` or ``cuda`` (checkpoint).
        generation: Decoding settings; greedy by default, as the published numbers are.
        judge: The LLM judge for open-ended benchmarks (``judge.cache`` keeps its verdicts;
            default ``<out>/judge_cache.jsonl``).
    """

    name: str = ""
    benchmarks: list[BenchmarkSpec] = field(default_factory=list)
    checkpoint: str = ""
    model_uri: str = ""
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    out: str = ""
    features_root: str = ""
    extract: bool = True
    batch_size: int = 8
    device: str = "auto"
    generation: GenerationArgs = field(default_factory=GenerationArgs)
    judge: JudgeConfig = field(default_factory=JudgeConfig)

    def source(self) -> str:
        """What is scored: the checkpoint, the model URI or ``MODEL @ URL``."""
        return self.checkpoint or self.model_uri or self.endpoint.display()


def load_suite(
    suite: str | Path, overrides: list[str] | None = None, flags: dict | None = None
) -> BenchConfig:
    """Read a suite file (local or ``s3://``), apply ``flags`` and ``key=value`` overrides,
    and check it.

    Raises:
        ConfigError: The file is missing or invalid, or the settings are (see
            :func:`check_config`).
    """
    uri = str(suite)
    path = stage_in(uri)  # a local path as it is; an s3:// object downloaded
    if not path.is_file():
        raise ConfigError(f"suite: {suite} is not a file (a suite YAML, see the README)")
    cfg = load_config(BenchConfig, str(path), overrides or [], flags=flags or {})
    cfg.name = cfg.name or path.stem
    for spec in cfg.benchmarks:
        for key in ("annotations", "answers", "videos"):
            value = getattr(spec, key)
            if value and not is_remote(value) and not Path(value).is_absolute():
                setattr(spec, key, _beside(uri, value))
    check_config(cfg)
    return cfg


def _beside(suite_uri: str, relative: str) -> str:
    """``relative`` resolved against the folder (or prefix) that holds the suite file."""
    if is_remote(suite_uri):
        return join(suite_uri.rsplit("/", 1)[0], relative)
    # Absolute: the videos folder is part of the features' key, and "videos" in two projects
    # must not name one cache folder.
    return str((Path(suite_uri).parent / relative).resolve())


def check_config(cfg: BenchConfig) -> None:
    """Refuse a suite that cannot run, before any model is loaded.

    Raises:
        ConfigError: Not exactly one model source, no ``out``, no benchmarks, a duplicate or
            unsafe name, an unknown format or criterion, a missing file, or an open-ended
            benchmark without a judge.
    """
    from videollm.bench.formats import BENCH_FORMATS
    from videollm.eval.judge_prompts import CRITERIA

    given = {"checkpoint": cfg.checkpoint, "model_uri": cfg.model_uri, "endpoint.url":
             cfg.endpoint.url}  # fmt: skip
    sources = [f"{k}={v}" for k, v in given.items() if v]
    if len(sources) != 1:
        raise ConfigError(
            "give exactly one model to score: --checkpoint DIR, --model-uri models:/NAME@ALIAS "
            f"or --endpoint URL (got {', '.join(sources) or 'none'})"
        )
    if cfg.model_uri and not cfg.model_uri.startswith("models:/"):
        raise ConfigError(f"model_uri: {cfg.model_uri!r} must look like models:/NAME@ALIAS")
    if not cfg.out:
        raise ConfigError("out: required (--out DIR), the folder for the results")
    if not _NAME.match(cfg.name):
        raise ConfigError(f"name: {cfg.name!r} must be letters, digits, '_', '-' or '.'")
    if not cfg.benchmarks:
        raise ConfigError(f"benchmarks: suite {cfg.name!r} names no benchmark")
    check_int(cfg.batch_size, 1, "batch_size")
    seen: set[str] = set()
    for i, spec in enumerate(cfg.benchmarks):
        where = f"benchmarks[{i}]"
        if not _NAME.match(spec.name or ""):
            raise ConfigError(
                f"{where}.name: {spec.name!r} must be a short name of letters, digits, '_', "
                "'-' or '.'"
            )
        if spec.name in seen:
            raise ConfigError(f"{where}.name: {spec.name!r} appears twice in the suite")
        if spec.name == cfg.name:
            # bench/<name>/score would be both the suite's score and this benchmark's.
            raise ConfigError(
                f"{where}.name: {spec.name!r} is also the suite's name; rename one (the suite "
                "takes its file's name unless `name:` is set)"
            )
        seen.add(spec.name)
        fmt = BENCH_FORMATS.get(spec.format)
        if fmt is None:
            raise ConfigError(
                f"{where}.format: {spec.format!r} ({spec.name}) is not one of "
                f"{', '.join(sorted(BENCH_FORMATS))}"
            )
        check_int(spec.limit, 0, f"{where}.limit")
        for key in ("annotations", "videos"):
            if not getattr(spec, key):
                raise ConfigError(f"{where}.{key}: required ({spec.name})")
        for key in ("annotations", "answers", "videos"):
            value = getattr(spec, key)
            if value and not is_remote(value) and not Path(value).exists():
                raise ConfigError(f"{where}.{key}: {value} does not exist ({spec.name})")
        unknown = [c for c in spec.criteria if c not in CRITERIA]
        if unknown:
            raise ConfigError(f"{where}.criteria: {unknown} not in {list(CRITERIA)}")
        if fmt.kind == "judge" and not cfg.judge.url:
            raise ConfigError(
                f"judge.url: benchmark {spec.name!r} ({spec.format}) is scored by an LLM judge; "
                "set judge.url (any OpenAI-compatible server, e.g. a local vLLM) and "
                "judge.model, or drop the benchmark"
            )


def criteria_of(spec: BenchmarkSpec) -> tuple[str, ...]:
    """The judge criteria a benchmark is scored on: its own, else its format's."""
    from videollm.bench.formats import BENCH_FORMATS

    return tuple(spec.criteria) or BENCH_FORMATS[spec.format].criteria


def benchmark_items(spec: BenchmarkSpec) -> list[dict]:
    """The benchmark's items as its published files give them, the first ``limit`` of them.

    Raises:
        InputError: A file is malformed (the message names file, line and field).
    """
    from videollm.bench.formats import load_benchmark

    answers = stage_in(spec.answers) if spec.answers else None
    items = load_benchmark(spec.format, stage_in(spec.annotations), spec.name, answers=answers)
    if not spec.bounds:
        items = [{k: v for k, v in it.items() if k not in ("start", "end")} for it in items]
    return items[: spec.limit] if spec.limit else items
