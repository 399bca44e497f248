"""Score one benchmark's predictions: multiple choice by parsing the option, the rest by judge.

Each benchmark has one headline metric, the number papers report for it:

* multiple choice (MVBench): ``accuracy``, the fraction of questions whose parsed option is
  the answer (unparseable replies count as wrong and are counted in ``unparsed``);
* zero-shot QA (MSVD, MSRVTT, TGIF, ActivityNet): ``accuracy``, the judge's yes / (yes + no),
  beside ``score``, its mean 0–5 match score;
* VCGBench: ``score``, the mean 0–5 score over the benchmark's criteria, beside each
  criterion's own score.

A suite's score is the mean of its benchmarks' headline metrics on a 0–1 scale (a 0–5 score
is divided by 5), so ``videollm select --metric bench/<suite>/score`` can rank checkpoints;
a suite one of whose benchmarks got no value has no score.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from videollm.bench.choice import score_choices
from videollm.bench.formats import BENCH_FORMATS
from videollm.bench.suite import BenchmarkSpec, criteria_of
from videollm.eval.judge import JudgeConfig, run_judge
from videollm.eval.judge_cache import JudgeCache

logger = logging.getLogger(__name__)

#: The top of a judge score (Video-ChatGPT's 0–5 scale).
MAX_SCORE = 5.0


@dataclass
class BenchmarkResult:
    """One benchmark's outcome.

    Attributes:
        name: The suite's name for it.
        format: Its format.
        metric: Name of the headline metric (a key of ``metrics``).
        n: Questions scored.
        metrics: Every metric (headline, per task or criterion, ``unparsed``, judge counts).
        judge: Who judged (model, the model the server reported, calls, cache hits), or
            ``None`` for multiple choice.
        skipped: Questions not asked: their video is missing or could not be decoded.
    """

    name: str
    format: str
    metric: str
    n: int
    metrics: dict[str, float]
    judge: dict[str, Any] | None = None
    skipped: int = 0

    @property
    def value(self) -> float:
        """The headline metric."""
        return self.metrics.get(self.metric, float("nan"))

    @property
    def unit_value(self) -> float:
        """The headline metric on a 0–1 scale."""
        return self.value / MAX_SCORE if self.metric == "score" else self.value


@dataclass
class Scored:
    """A benchmark's metrics and, when judged, who judged."""

    metrics: dict[str, float] = field(default_factory=dict)
    judge: dict[str, Any] | None = None


def score_benchmark(
    spec: BenchmarkSpec,
    rows: Sequence[dict[str, Any]],
    judge: JudgeConfig,
    cache: JudgeCache | None = None,
) -> Scored:
    """Metrics of one benchmark's prediction rows (see the module docstring).

    Raises:
        JudgeAuthError, JudgeError: the judge refused the key or is not reachable at its URL.
    """
    if not rows:
        # Every question was skipped (no video or features): there is no accuracy to report,
        # which is not an accuracy of 0 (and the suite then has no score either).
        logger.warning("%s: no question was answered; it has no score", spec.name)
        return Scored({"count": 0.0})
    fmt = BENCH_FORMATS[spec.format]
    if fmt.kind == "choice":
        metrics = score_choices(rows)
        return Scored({"accuracy": metrics.pop("accuracy"), **metrics})
    criteria = criteria_of(spec)
    run = run_judge(rows, judge, criteria, cache=cache)
    out: dict[str, float] = {"count": float(len(rows))}
    if "qa" in criteria:
        if "judge_qa_accuracy" in run.metrics:
            out["accuracy"] = run.metrics["judge_qa_accuracy"]
        if "judge_qa_score" in run.metrics:
            out["score"] = run.metrics["judge_qa_score"]
    else:
        scores = [
            run.metrics[f"judge_{c}_score"] for c in criteria if f"judge_{c}_score" in run.metrics
        ]
        if scores:
            out["score"] = sum(scores) / len(scores)
    for c in criteria:
        if c != "qa" and f"judge_{c}_score" in run.metrics:
            out[c] = run.metrics[f"judge_{c}_score"]
    for key in ("judge_malformed", "judge_failed"):
        out[key] = run.metrics.get(key, 0.0)
    return Scored(out, run.judge)


def headline(spec: BenchmarkSpec) -> str:
    """The name of a benchmark's headline metric."""
    fmt = BENCH_FORMATS[spec.format]
    return "accuracy" if fmt.kind == "choice" or "qa" in criteria_of(spec) else "score"


def suite_score(results: Sequence[BenchmarkResult]) -> float:
    """Mean of the benchmarks' headline metrics on a 0–1 scale; NaN unless every benchmark
    has one (a mean over the benchmarks that happened to get a value, say MVBench alone while
    the judge was down, would rank models on something else than the suite)."""
    values = [r.unit_value for r in results]
    if not values or any(v != v for v in values):
        missing = [r.name for r in results if r.value != r.value]
        if missing:
            logger.warning("no suite score: %s got no value", ", ".join(missing))
        return float("nan")
    return sum(values) / len(values)
