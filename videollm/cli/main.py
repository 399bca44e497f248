"""``videollm`` command line. It only parses: every command calls one library function."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from videollm import __version__
from videollm.cli.benchmark import add_benchmark_parser
from videollm.cli.evaluate import add_evaluate_parser
from videollm.cli.models import add_models_parser
from videollm.cli.pipeline import add_pipeline_parser
from videollm.errors import EXIT_CONFIG, ConfigError, InputError, VideoLLMError

logger = logging.getLogger("videollm")

EXIT_ERROR = 1  # an error that may pass (storage, tracking server, a file system)
# EXIT_CONFIG (78): the input is wrong (an InputError, or a named path that does not exist);
# retrying cannot help.
EXIT_PARTIAL = 3  # extract: some videos failed, the rest were written
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C

EPILOG = (
    "Settings not shown as flags can be given as key=value overrides, e.g. optim.lr=2e-4. "
    "Paths may be local or s3:// / minio:// URIs (VIDEOLLM_S3_ENDPOINT, AWS_ACCESS_KEY_ID, "
    "AWS_SECRET_ACCESS_KEY); runs are recorded in MLflow (MLFLOW_TRACKING_URI)."
)


def _flags(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The flags the user actually gave (None means 'use the recipe or the default')."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _cmd_extract(args: argparse.Namespace) -> int:
    from videollm.config_loader import load_config, parse_overrides
    from videollm.features.extract import ExtractConfig
    from videollm.steps import run_extract

    names = ["encoder", "layer", "num_frames", "pooling", "batch_size", "num_workers"]
    flags = _flags(args, [*names, "device", "dtype", "decoder"])
    if args.allow_pickle:
        flags["allow_pickle"] = True
    if args.pooling_option:
        flags["pooling_options"] = parse_overrides(args.pooling_option)
    cfg = load_config(ExtractConfig, args.config, args.overrides, flags=flags)
    result = run_extract(args.videos, args.out, cfg)
    print(json.dumps({k: v for k, v in vars(result).items() if k != "failures"}, default=str))
    if result.failed:
        print(f"{result.failed} video(s) failed; see {args.out}/failures.jsonl", file=sys.stderr)
        return EXIT_PARTIAL
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from videollm.config_loader import load_config
    from videollm.data.convert import ConvertConfig
    from videollm.steps import run_convert

    flags = _flags(args, ["format", "input", "out", "num_frames", "val_fraction", "seed"])
    if args.repeat:
        flags["repeat"] = _parse_repeat(args.repeat)
    cfg = load_config(ConvertConfig, args.config, args.overrides, flags=flags)
    result = run_convert(cfg)
    print(json.dumps(vars(result), default=str))
    return 0


def _parse_repeat(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value.isdigit():
            raise ConfigError(f"--repeat {item!r} is not of the form TASK=N")
        out[key] = int(value)
    return out


def _cmd_train(args: argparse.Namespace) -> int:
    from videollm.steps import run_train
    from videollm.train.loop import load_train_config

    flags: dict[str, Any] = _flags(args, ["records", "features", "out"])
    if args.llm:
        flags["model"] = {"llm": args.llm}
    cfg = load_train_config(args.config, args.overrides, flags=flags)
    result = run_train(cfg)
    print(json.dumps(vars(result), default=str))
    return 0


def _cmd_chat(args: argparse.Namespace) -> int:
    from videollm.chat import chat
    from videollm.eval.generate import GenerationArgs
    from videollm.storage.staging import stage_in

    gen = GenerationArgs(max_new_tokens=args.max_new_tokens, temperature=args.temperature)
    checkpoint = stage_in(args.checkpoint)
    print(chat(checkpoint, args.video, args.question, generation=gen, device=args.device))
    return 0


def _cmd_select(args: argparse.Namespace) -> int:
    from videollm.tracking import select_champion

    result = select_champion(args.experiment, args.metric, args.mode, args.model_name, args.alias)
    print(result.table())
    if result.version is None:
        print(f"no finished run of {args.experiment!r} has {args.metric} and a checkpoint")
        return EXIT_ERROR
    verdict = "promoted to" if result.promoted else "kept; version"
    print(f"{args.model_name}@{args.alias}: {verdict} {result.champion_version}")
    return 0


def _cmd_runs_compare(args: argparse.Namespace) -> int:
    from videollm.tracking import compare_runs

    print(compare_runs(args.experiment, args.metrics, args.params, args.max_runs, step=args.step))
    return 0


def _cmd_serve(args: argparse.Namespace) -> NoReturn:
    from videollm.serve.launch import resolve_checkpoint, serve

    if sum(map(bool, (args.bento, args.checkpoint, args.model_uri))) != 1:
        raise VideoLLMError("give exactly one of --bento, --checkpoint or --model-uri")
    checkpoint = resolve_checkpoint(args.checkpoint) if args.checkpoint else None
    # serve() becomes ``bentoml serve`` (exec), so a signal to this PID reaches the server:
    # it returns only by raising.
    serve(checkpoint, args.bento, args.model_uri, host=args.host, port=args.port)


def _cmd_package(args: argparse.Namespace) -> int:
    from videollm.serve.package import package

    done = package(args.checkpoint, args.model_uri, build=not args.no_build)
    print(f"BentoML model: {done.model_tag}")
    for key, value in sorted(done.labels.items()):
        print(f"  {key}: {value}")
    if done.bento_tag:
        print(f"Bento: {done.bento_tag}")
        print(f"serve it:      videollm serve --bento {done.bento_tag}")
        print(f"containerize:  bentoml containerize {done.bento_tag}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from videollm.demo.run import run_demo

    summary = run_demo(args.out)
    print(json.dumps(summary, indent=2))
    return 0


def _common(p: argparse.ArgumentParser, config: bool = True) -> None:
    if config:
        p.add_argument("--config", help="YAML file of settings (train: also a preset name)")
        p.add_argument("overrides", nargs="*", metavar="key=value", help="setting overrides")


def build_parser() -> argparse.ArgumentParser:
    """The ``videollm`` argument parser (its flags are the public interface)."""
    parser = argparse.ArgumentParser(
        prog="videollm", description="Fine-tune, evaluate and chat with video LLMs.", epilog=EPILOG
    )
    parser.add_argument("--version", action="version", version=f"videollm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug", action="store_true", help="debug logging, and a traceback with every error"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("extract", help="videos → features (safetensors) + manifest", epilog=EPILOG)
    p.add_argument("--videos", required=True, help="folder, list file or s3:// prefix of videos")
    p.add_argument("--out", required=True, help="features folder or s3:// prefix")
    p.add_argument("--encoder", help="HF id or local path of a vision tower (CLIP, SigLIP, ...)")
    p.add_argument("--layer", type=int, help="hidden-state layer (default -2, penultimate)")
    p.add_argument(
        "--num-frames", dest="num_frames", type=int, help="frames sampled per video (default 100)"
    )
    from videollm.features.pooling import POOLINGS
    from videollm.video.decode import DECODERS

    p.add_argument(
        "--pooling",
        choices=POOLINGS.choices(),
        metavar="NAME",
        help="feature pooling: %(choices)s (default spatiotemporal; the README's pooling table "
        "says what each makes)",
    )
    p.add_argument(
        "--pooling-option",
        dest="pooling_option",
        action="append",
        metavar="KEY=VALUE",
        help="an option of the pooling, repeatable (--pooling-option tokens_per_frame=4)",
    )
    p.add_argument("--batch-size", dest="batch_size", type=int, help="videos per encoder batch")
    p.add_argument("--num-workers", dest="num_workers", type=int, help="decode workers")
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument(
        "--dtype",
        choices=["auto", "float32", "float16", "bfloat16"],
        help="the encoder's dtype (default auto: bf16 on CUDA and on CPUs with native bf16)",
    )
    p.add_argument(
        "--decoder",
        choices=DECODERS,
        help="video decoder (default auto: torchcodec where it loads, then decord, then PyAV)",
    )
    p.add_argument(
        "--allow-pickle", action="store_true", help="allow importing Video-ChatGPT .pkl features"
    )
    _common(p)
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser(
        "convert", help="annotations → chat records (train/val JSONL)", epilog=EPILOG
    )
    from videollm.data.adapters import ADAPTERS

    p.add_argument(
        "--format",
        choices=ADAPTERS.choices(),
        metavar="FORMAT",
        required=True,
        help="annotation format: %(choices)s (the README's format table says what each reads)",
    )
    p.add_argument("--input", required=True, help="annotation file or folder (path or s3:// URI)")
    p.add_argument("--out", required=True, help="records folder or s3:// prefix")
    p.add_argument(
        "--repeat", nargs="+", metavar="TASK=N", help="per-task repeat factors (train split)"
    )
    p.add_argument(
        "--num-frames", dest="num_frames", type=int, help="frames sampled per video (breakfast)"
    )
    p.add_argument(
        "--val-fraction", dest="val_fraction", type=float, help="share of videos held out"
    )
    p.add_argument("--seed", type=int, help="split seed")
    _common(p)
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("train", help="fine-tune on records + features", epilog=EPILOG)
    p.add_argument("--records", help="records folder (train.jsonl), file, or s3:// URI")
    p.add_argument("--features", help="features folder or s3:// prefix")
    p.add_argument("--llm", help="HF id or local path of the base causal LM")
    p.add_argument("--out", help="checkpoint folder or s3:// prefix")
    _common(p)
    p.set_defaults(func=_cmd_train)

    _common(add_evaluate_parser(sub, EPILOG))
    add_benchmark_parser(sub, EPILOG)

    p = sub.add_parser("chat", help="answer a question about a video file")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--video", required=True)
    p.add_argument("--question", required=True)
    p.add_argument("--max-new-tokens", dest="max_new_tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_cmd_chat)

    p = sub.add_parser("select", help="register the best run's checkpoint; move the champion alias")
    p.add_argument("--experiment", default="videollm", help="MLflow experiment whose runs compete")
    p.add_argument("--metric", default="val/exact_match", help="metric to rank by")
    p.add_argument("--mode", choices=["max", "min"], default="max")
    p.add_argument(
        "--model-name", dest="model_name", default="videollm", help="registered model name"
    )
    p.add_argument("--alias", default="champion")
    p.set_defaults(func=_cmd_select)

    p = sub.add_parser("runs", help="inspect MLflow runs")
    runs = p.add_subparsers(dest="runs_command", required=True, metavar="SUBCOMMAND")
    p = runs.add_parser("compare", help="table of runs with key params and metrics")
    p.add_argument("--experiment", default="videollm")
    p.add_argument("--metrics", nargs="+", default=["val/exact_match", "train/final_loss"])
    p.add_argument("--params", nargs="+", default=["model.train_mode", "optim.lr"])
    p.add_argument("--max-runs", dest="max_runs", type=int, default=20)
    p.add_argument(
        "--step", help="only runs of this step, e.g. benchmark (models side by side on a suite)"
    )
    p.set_defaults(func=_cmd_runs_compare)

    p = sub.add_parser(
        "package", help="save a checkpoint or the MLflow champion as a BentoML model and Bento"
    )
    p.add_argument("--checkpoint", help="checkpoint folder or s3:// prefix")
    p.add_argument(
        "--model-uri", dest="model_uri", help="registry URI, e.g. models:/videollm@champion"
    )
    p.add_argument(
        "--no-build", dest="no_build", action="store_true", help="only save the BentoML model"
    )
    p.set_defaults(func=_cmd_package)

    p = sub.add_parser("serve", help="serve a checkpoint, registry model or Bento over HTTP")
    p.add_argument("--bento", help="a Bento tag from `videollm package`, e.g. videollm:latest")
    p.add_argument("--checkpoint", help="checkpoint folder or s3:// prefix")
    p.add_argument(
        "--model-uri", dest="model_uri", help="registry URI, e.g. models:/videollm@champion"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 for all)",
    )
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=_cmd_serve)

    add_models_parser(sub)
    add_pipeline_parser(sub)

    p = sub.add_parser("demo", help="build tiny models + videos and run every step offline")
    p.add_argument("--out", default="demo_out", help="where everything goes")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``videollm`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose or args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        # The step's MLflow run is already marked KILLED and finished work is on disk.
        print(f"videollm {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (VideoLLMError, OSError, ValueError) as err:
        # Bad input (a path, a file, a value) reaches here as one of these: one line naming
        # it is what a user needs; --debug keeps the traceback for a bug report.
        if args.debug:
            raise
        print(f"videollm {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_CONFIG if _is_input_error(err) else EXIT_ERROR


def _is_input_error(err: BaseException) -> bool:
    """A wrong input: running again unchanged fails again. A path or key the user named that
    does not exist (locally or in S3) is one too; other OS errors (disk full, a network blip)
    may pass."""
    return isinstance(err, (InputError, FileNotFoundError, NotADirectoryError, IsADirectoryError))


def _one_line(err: BaseException) -> str:
    """The error's message on one line (OSError's ``[Errno N]`` form kept as it names the path)."""
    text = " ".join(str(err).split())
    return text or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
