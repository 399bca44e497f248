"""``videollm benchmark``: parsing only; the work is in :func:`videollm.bench.run.run_benchmark`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

BENCHMARK_HELP = """\
Score one model on a suite of the benchmarks video-LLM papers report, into one results table
(results.md, results.json) and one MLflow run named benchmark-<model>-<suite>.

The model is a checkpoint (--checkpoint), a registered model (--model-uri models:/NAME@ALIAS)
or a served one (--endpoint URL --model NAME). The suite YAML names the benchmarks: format,
annotation file(s), videos, sample limit; open-ended ones are scored by the judge (judge.url),
multiple choice without one. Features of the benchmark videos are extracted once and reused;
the judge's verdicts are cached, so a re-run or a second model only pays for new answers.

formats:
{formats}

Compare models: videollm runs compare --step benchmark --metrics bench/SUITE/score ...
"""


def _formats() -> str:
    from videollm.bench.formats import BENCH_FORMATS

    return "\n".join(f"  {n:<22} {f.kind:<7} {f.summary}" for n, f in sorted(BENCH_FORMATS.items()))


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from videollm.bench.report import results_markdown
    from videollm.bench.run import run_benchmark
    from videollm.bench.suite import load_suite
    from videollm.cli.main import _flags

    flags = _flags(
        args, ["checkpoint", "model_uri", "out", "features_root", "batch_size", "device"]
    )
    endpoint = _flags(args, ["model", "api_key_env", "workers"])
    if args.endpoint is not None:
        endpoint["url"] = args.endpoint
    if endpoint:
        flags["endpoint"] = endpoint
    cfg = load_suite(args.suite, args.overrides, flags=flags)
    data = run_benchmark(cfg)
    sys.stdout.write(results_markdown(data))
    return 0


def add_benchmark_parser(sub: Any, epilog: str) -> argparse.ArgumentParser:
    """Add ``videollm benchmark`` to the top-level subparsers ``sub``; return its parser."""
    p = sub.add_parser(
        "benchmark",
        help="score a model on a benchmark suite (zero-shot QA, VCGBench, MVBench)",
        description=BENCHMARK_HELP.format(formats=_formats()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog,
    )
    p.add_argument("--suite", required=True, help="suite YAML (see the README's Benchmarks)")
    p.add_argument("--out", required=True, help="folder (or s3:// prefix) for the results")
    p.add_argument("--checkpoint", help="checkpoint folder or s3:// prefix to score")
    p.add_argument(
        "--model-uri",
        dest="model_uri",
        help="or a registered model, e.g. models:/videollm@champion",
    )
    p.add_argument(
        "--endpoint",
        metavar="URL",
        help="or a served model: OpenAI-compatible API base, e.g. http://localhost:8000/v1",
    )
    p.add_argument("--model", help="model name the endpoint serves (--endpoint)")
    p.add_argument(
        "--api-key-env",
        dest="api_key_env",
        metavar="VAR",
        help="environment variable holding the endpoint's key (default OPENAI_API_KEY)",
    )
    p.add_argument("--workers", type=int, help="requests in flight at once to the endpoint")
    p.add_argument(
        "--features-root",
        dest="features_root",
        help="where benchmark features are kept and reused (default: the videollm cache)",
    )
    p.add_argument("--batch-size", dest="batch_size", type=int, help="questions per generate call")
    p.add_argument("--device", help="auto, cpu or cuda (checkpoint)")
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="suite overrides, e.g. judge.url=..."
    )
    p.set_defaults(func=_cmd_benchmark)
    return p
