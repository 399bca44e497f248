"""``videollm pipeline compile | run --local | submit``: parsing only; the work is in
:mod:`videollm.kfp.runner`."""

from __future__ import annotations

import argparse
import os
import sys

from videollm.errors import VideoLLMError


def _use_registry(args: argparse.Namespace) -> None:
    """Point the component images at ``--registry`` (before the pipelines are imported)."""
    if args.registry:
        if "videollm.images" in sys.modules:
            raise VideoLLMError("--registry must be set before the pipelines are imported")
        os.environ["VIDEOLLM_IMAGE_REGISTRY"] = args.registry


def _compile(args: argparse.Namespace) -> int:
    _use_registry(args)
    from videollm.kfp.runner import compile_all

    for path in compile_all(args.out):
        print(f"wrote {path}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from videollm.kfp.runner import get_pipeline, parse_params, registers_a_model, run_local
    from videollm.tracking.lookup import champion_summary

    if not args.local:
        raise VideoLLMError("only --local runs here; use `videollm pipeline submit` for KFP")
    pipeline = get_pipeline(args.pipeline)
    params = parse_params(pipeline, args.param)
    done = run_local(args.pipeline, params, args.out)
    print(f"pipeline {args.pipeline} succeeded")
    print(f"  task outputs:  {done.pipeline_root}")
    print(f"  run data:      {done.work_uri}")
    print(f"  MLflow:        {done.tracking_uri}")
    if not registers_a_model(pipeline):
        for report in done.reports():
            print(f"  report:        {report}")
        return 0
    champion = champion_summary(params.get("registered_model_name", "videollm"))
    if champion:
        print(f"  MLflow run:    {champion['run_name']} ({champion['run_id']})")
        print(f"  champion:      {champion['model_uri']} = version {champion['version']}")
        print(f"  checkpoint:    {champion['checkpoint']}")
        print(f"  serve it:      videollm serve --model-uri {champion['model_uri']}")
    return 0


def _submit(args: argparse.Namespace) -> int:
    _use_registry(args)
    from videollm.kfp.runner import get_pipeline, parse_params, submit

    params = parse_params(get_pipeline(args.pipeline), args.param)
    caching = False if args.no_cache else None
    run_name, run_id, link = submit(
        args.pipeline, params, args.host, args.experiment, args.run_name, args.namespace, caching
    )
    print(f"experiment: {args.experiment}")
    print(f"run:        {run_name} {run_id}")
    print(f"link:       {link}")
    return 0


def add_pipeline_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``videollm pipeline`` and its subcommands."""
    p = sub.add_parser("pipeline", help="compile, run locally or submit the KFP pipelines")
    cmds = p.add_subparsers(dest="pipeline_command", required=True, metavar="SUBCOMMAND")

    def registry(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--registry",
            help="registry of the videollm images, as in `make push REGISTRY=...` "
            "(default: $VIDEOLLM_IMAGE_REGISTRY or ghcr.io/videollm)",
        )

    c = cmds.add_parser("compile", help="write pipelines/<name>.yaml for the KFP UI")
    c.add_argument("--out", help="folder for the YAML (default: the pipelines/ folder)")
    registry(c)
    c.set_defaults(func=_compile)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--pipeline",
            default="finetune",
            help="an installed pipeline: finetune (default), extract_only or benchmark",
        )
        q.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a pipeline parameter, e.g. videos_uri=s3://bucket/videos (repeatable)",
        )

    r = cmds.add_parser("run", help="run a pipeline on this machine (kfp.local)")
    r.add_argument("--local", action="store_true", help="run with kfp.local (required)")
    r.add_argument("--out", default="pipeline_out", help="pipeline root, work data and MLflow")
    common(r)
    r.set_defaults(func=_run)

    s = cmds.add_parser("submit", help="submit a pipeline run to a KFP server")
    s.add_argument("--host", required=True, help="KFP API endpoint, e.g. https://kfp.example.com")
    s.add_argument("--experiment", default="videollm", help="KFP experiment name")
    s.add_argument(
        "--run-name", dest="run_name", help="run name (default: '<pipeline> <local time>')"
    )
    s.add_argument(
        "--no-cache",
        action="store_true",
        help="run every task, even extract/convert with unchanged parameters",
    )
    s.add_argument("--namespace", help="KFP namespace (multi-user installs)")
    registry(s)
    common(s)
    s.set_defaults(func=_submit)
