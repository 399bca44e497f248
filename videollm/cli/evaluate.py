"""``videollm evaluate``: parsing only; the work is in :func:`videollm.steps.run_evaluate`."""

from __future__ import annotations

import argparse
import json
from typing import Any

EVALUATE_HELP = """\
Answer every question of the records and score the answers: predictions.jsonl + metrics.json,
and val/* metrics in MLflow.

The answers come from a checkpoint (--checkpoint with --features), or from a served model on
any OpenAI-compatible endpoint (--endpoint URL --model NAME with --videos): `videollm serve`,
or another model served by vLLM. Each question is sent with its video as a base64 data: URL;
the metrics are the same, so an outside model and the champion compare side by side
(`videollm runs compare --params endpoint.model checkpoint`).
"""


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from videollm.cli.main import _flags
    from videollm.config_loader import load_config
    from videollm.eval.evaluate import EvalConfig
    from videollm.steps import run_evaluate

    flags = _flags(
        args, ["checkpoint", "records", "features", "videos", "out", "batch_size", "device"]
    )
    if args.allow_empty:
        flags["allow_empty"] = True
    endpoint = _flags(args, ["model", "api_key_env", "workers"])
    if args.endpoint is not None:
        endpoint["url"] = args.endpoint
    if endpoint:
        flags["endpoint"] = endpoint
    cfg = load_config(EvalConfig, args.config, args.overrides, flags=flags)
    metrics = run_evaluate(cfg)
    print(json.dumps(metrics, indent=2))
    return 0


def add_evaluate_parser(sub: Any, epilog: str) -> argparse.ArgumentParser:
    """Add ``videollm evaluate`` to the top-level subparsers ``sub``; return its parser."""
    p = sub.add_parser(
        "evaluate",
        help="predictions.jsonl + metrics.json, from a checkpoint or an OpenAI-compatible endpoint",
        description=EVALUATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog,
    )
    p.add_argument("--records", required=True, help="records to answer, e.g. RECORDS_DIR/val.jsonl")
    p.add_argument("--out", required=True, help="folder (or s3:// prefix) for the results")
    p.add_argument(
        "--checkpoint", help="checkpoint folder or s3:// prefix to evaluate (with --features)"
    )
    p.add_argument("--features", help="features folder of the records' videos (--checkpoint)")
    p.add_argument(
        "--endpoint",
        metavar="URL",
        help="score a served model instead: OpenAI-compatible API base, e.g. "
        "http://localhost:8000/v1 (requests go to URL/chat/completions; with --model, --videos)",
    )
    p.add_argument("--model", help="model name the endpoint serves, e.g. Qwen/Qwen2-VL-7B-Instruct")
    p.add_argument(
        "--videos",
        help="folder (or s3:// prefix) of the records' videos, as given to `videollm extract` "
        "(--endpoint)",
    )
    p.add_argument(
        "--api-key-env",
        dest="api_key_env",
        metavar="VAR",
        help="environment variable holding the endpoint's key, sent as a Bearer token when set "
        "(default OPENAI_API_KEY; VIDEOLLM_API_TOKEN for `videollm serve`)",
    )
    p.add_argument(
        "--workers", type=int, help="requests in flight at once to the endpoint (default 4)"
    )
    p.add_argument(
        "--batch-size", dest="batch_size", type=int, help="questions per generate call (default 8)"
    )
    p.add_argument("--device", help="auto, cpu or cuda (--checkpoint)")
    p.add_argument(
        "--allow-empty",
        dest="allow_empty",
        action="store_true",
        help="accept records with no question (default: an error)",
    )
    p.set_defaults(func=_cmd_evaluate)
    return p
