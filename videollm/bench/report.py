"""The results table of a benchmark run, and the side-by-side table of several runs.

``results.json`` is the machine-readable form (what the pipeline's comparison reads back);
``results.md`` is the same as a Markdown table, each benchmark with its headline metric, n
and its judge: scores from different judges are not comparable, so the judge is on every row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from videollm.bench.score import BenchmarkResult, suite_score


def results_json(suite: str, model: str, results: Sequence[BenchmarkResult]) -> dict[str, Any]:
    """``results.json``: the suite, the model, its score and each benchmark's outcome."""
    return {
        "suite": suite,
        "model": model,
        "score": _finite(suite_score(results)),
        "benchmarks": [asdict(r) | {"value": _finite(r.value)} for r in results],
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def judge_label(judge: dict[str, Any] | None) -> str:
    """``model (served as X)``, or ``-`` for a benchmark scored without a judge."""
    if not judge:
        return "-"
    served = judge.get("served_model")
    model = judge.get("model", "?")
    return f"{model} ({served})" if served and served != model else str(model)


def _fmt(value: Any, metric: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if metric == "score":
        return f"{value:.2f}"
    return f"{100 * value:.1f}%" if isinstance(value, float) else str(value)


def results_markdown(data: dict[str, Any]) -> str:
    """``results.md`` from :func:`results_json`'s dict."""
    lines = [
        f"## Benchmark suite `{data['suite']}`: {data['model']}",
        "",
        "| benchmark | format | metric | value | n | skipped | unparsed / malformed | judge |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in data["benchmarks"]:
        m = b["metrics"]
        bad = m.get("unparsed", m.get("judge_malformed", 0.0)) + m.get("judge_failed", 0.0)
        lines.append(
            f"| {b['name']} | {b['format']} | {b['metric']} | {_fmt(b['value'], b['metric'])} "
            f"| {b['n']} | {b['skipped']} | {int(bad)} | {judge_label(b['judge'])} |"
        )
    lines += ["", f"Suite score (mean headline metric, 0–1): {_fmt(data['score'])}", ""]
    return "\n".join(lines)


def comparison_markdown(runs: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """A side-by-side table of several models' ``results.json`` on one suite.

    Args:
        runs: ``(label, results)`` pairs, e.g. ``("champion", ...)``, ``("challenger", ...)``.
    """
    names = [b["name"] for b in runs[0][1]["benchmarks"]] if runs else []
    header = "| benchmark | metric | " + " | ".join(label for label, _ in runs) + " |"
    lines = ["## Benchmark comparison", "", header, "|---|---|" + "---|" * len(runs)]
    for name in names:
        cells, metric = [], ""
        for _, data in runs:
            found = next((b for b in data["benchmarks"] if b["name"] == name), None)
            metric = metric or (found["metric"] if found else "")
            cells.append(_fmt(found["value"], found["metric"]) if found else "-")
        lines.append(f"| {name} | {metric} | " + " | ".join(cells) + " |")
    lines.append(
        "| **suite score** | 0–1 | " + " | ".join(_fmt(d["score"]) for _, d in runs) + " |"
    )
    judges = {judge_label(b["judge"]) for _, d in runs for b in d["benchmarks"]} - {"-"}
    if len(judges) > 1:
        lines += ["", f"Warning: different judges ({', '.join(sorted(judges))}); "
                  "their scores are not comparable."]  # fmt: skip
    models = "; ".join(f"{label}: {d['model']}" for label, d in runs)
    return "\n".join([*lines, "", models, ""])
