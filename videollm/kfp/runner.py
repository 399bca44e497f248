"""Compile the pipelines, run one locally through ``kfp.local``, or submit one to a KFP server."""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from videollm.errors import ConfigError, VideoLLMError

logger = logging.getLogger(__name__)


#: Entry-point group the pipelines register under (``pyproject.toml``); a plugin package can
#: add its own pipelines there, and ``videollm pipeline`` then compiles, runs and submits them.
ENTRY_POINT_GROUP = "videollm.pipelines"


def _entry_points() -> dict[str, EntryPoint]:
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if not found:
        raise ConfigError(
            f"no pipelines are installed (entry-point group {ENTRY_POINT_GROUP}): "
            "reinstall videollm (`pip install -e .`)"
        )
    return dict(sorted(found.items()))


def pipelines() -> dict[str, Any]:
    """The installed pipelines by name (loaded lazily: ``kfp`` is slow to import)."""
    return {name: ep.load() for name, ep in _entry_points().items()}


def get_pipeline(name: str) -> Any:
    """One pipeline by name, or a :class:`ConfigError` listing the known ones."""
    known = _entry_points()
    if name not in known:
        raise ConfigError(f"pipeline {name!r} is unknown; known: {', '.join(known)}")
    return known[name].load()


def registers_a_model(pipeline: Any) -> bool:
    """Whether a pipeline registers a model (it takes ``registered_model_name``); one that
    does not (``benchmark``, ``extract_only``) ends with its tasks' reports instead."""
    return "registered_model_name" in (pipeline.component_spec.inputs or {})


def source_dir(name: str) -> Path:
    """The folder of pipeline ``name``'s module, where its compiled YAML is committed."""
    module = importlib.import_module(_entry_points()[name].module)
    return Path(module.__file__ or ".").parent


def compile_all(out_dir: str | Path | None = None) -> list[Path]:
    """Compile every pipeline to ``<name>.yaml`` (default: beside its source)."""
    from kfp import compiler

    written = []
    for name, pipeline in pipelines().items():
        out = Path(out_dir) if out_dir else source_dir(name)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{name}.yaml"
        compiler.Compiler().compile(pipeline, str(path))
        written.append(path)
    return written


def parse_params(pipeline: Any, items: list[str]) -> dict[str, Any]:
    """``name=value`` strings → typed arguments, by the pipeline's declared parameter types.

    Lists and dicts are JSON (``train_overrides='["train.epochs=2"]'``).

    Raises:
        ConfigError: a malformed item, an unknown name, or a value of the wrong type.
    """
    inputs = pipeline.component_spec.inputs or {}
    params: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--param {item!r}: expected NAME=VALUE")
        if name not in inputs:
            raise ConfigError(f"--param {name}: unknown; the parameters are {', '.join(inputs)}")
        params[name] = _typed(name, inputs[name].type, raw)
    missing = [n for n, spec in inputs.items() if spec.default is None and not spec.optional]
    missing = [n for n in missing if n not in params]
    if missing:
        raise ConfigError(f"missing required parameter(s): {', '.join(missing)}")
    return params


def _typed(name: str, kind: str, raw: str) -> Any:
    try:
        if kind == "Integer":
            return int(raw)
        if kind == "Float":
            return float(raw)
        if kind == "Boolean":
            if raw.lower() not in {"true", "false", "1", "0"}:
                raise ValueError(raw)
            return raw.lower() in {"true", "1"}
        if kind in {"List", "Dict"}:
            value = json.loads(raw)
            if not isinstance(value, list if kind == "List" else dict):
                raise ValueError(raw)
            return value
    except ValueError as err:
        raise ConfigError(f"--param {name}={raw!r}: not a valid {kind}") from err
    return raw


@dataclass
class LocalRun:
    """Where a local run put things."""

    pipeline_root: Path
    work_uri: str
    tracking_uri: str

    def reports(self) -> list[Path]:
        """The Markdown reports of the run's top-level tasks (``<run>/<task>/report``)."""
        return sorted(self.pipeline_root.glob("*/*/report"))


def run_local(name: str, params: dict[str, Any], out: str | Path) -> LocalRun:
    """Run a pipeline on this machine with ``kfp.local``'s SubprocessRunner.

    Each task runs as a subprocess of this Python (no containers; ``base_image`` and Kubernetes
    settings are ignored). Unless given, data goes under ``out/work``, MLflow to
    ``MLFLOW_TRACKING_URI`` (default ``mlflow.db`` in the working directory), training runs
    under ``torchrun`` here, evaluation on this machine's GPU if it has one, and no platform
    ConfigMap or Secret is expected (empty names: the tasks check for none, even in a pod).

    Raises:
        VideoLLMError: a task failed (its log is above, in the output).
    """
    from kfp import local

    from videollm.tracking.store import connect, ensure_experiment, tracking_uri

    out = Path(out).resolve()
    pipeline = get_pipeline(name)
    inputs = pipeline.component_spec.inputs or {}
    params = dict(params)
    params.setdefault("work_uri", str(out / "work"))
    for key in ("platform_config", "platform_secret"):
        params.setdefault(key, "")
    if "launcher" in inputs:
        import torch

        params.setdefault("launcher", "local")
        # One process per local GPU, or one CPU process: not the cluster default of 8 GPUs.
        params.setdefault("gpus_per_worker", torch.cuda.device_count())
        params.setdefault("eval_gpus", "1" if torch.cuda.is_available() else "0")
        check_local_launcher(params["launcher"])
    # Pin the store for every task (default: mlflow.db in the working directory, as the CLI).
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri()
    # Create the tracking store's tables now: parallel tasks racing to create them would fail.
    # connect() also points this process's MLflow at that store, as the tasks are.
    ensure_experiment(connect(), params.get("experiment", "videollm"))
    # Tasks run `python`: make it this interpreter, with videollm importable.
    bin_dir, path = str(Path(sys.executable).parent), os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{path}"
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(out / "kfp"),
        raise_on_error=True,
    )
    logger.info("running %s locally; task outputs under %s", name, out / "kfp")
    try:
        pipeline(**params)
    except RuntimeError as err:
        raise VideoLLMError(f"pipeline {name} failed: {err}") from err
    return LocalRun(out / "kfp", params["work_uri"], os.environ["MLFLOW_TRACKING_URI"])


def check_local_launcher(name: str) -> None:
    """Refuse, before any task runs, a launcher that cannot work on this machine.

    Under ``kfp.local`` every task runs here, so a launcher that needs a cluster (``trainjob``)
    would only fail at the train task, after extraction; building it now fails in a second.

    Raises:
        ConfigError: ``name`` is unknown or needs a cluster (the message says to use
            ``launcher=local``).
    """
    from videollm.launcher.registry import LaunchSettings, make_launcher

    make_launcher(name, LaunchSettings(deadline_s=1))


def submit(
    name: str,
    params: dict[str, Any],
    host: str,
    experiment: str = "videollm",
    run_name: str | None = None,
    namespace: str | None = None,
    enable_caching: bool | None = None,
) -> tuple[str, str, str]:
    """Submit a pipeline run to a KFP server.

    Args:
        name: An installed pipeline (``finetune``, ``extract_only``, ``benchmark``).
        params: Pipeline parameters, already checked by :func:`parse_params`.
        host: KFP API endpoint.
        experiment: KFP experiment (created if missing).
        run_name: Run name; default ``<pipeline> <local time>``, as the KFP UI names runs.
        namespace: KFP namespace (multi-user installs).
        enable_caching: ``False`` turns caching off for every task of this run; ``None``
            keeps each task's own setting.

    Returns:
        The run's name, id and UI link.
    """
    import datetime

    import kfp
    import yaml

    from videollm.kfp.pod_settings import apply_pod_settings

    run_name = run_name or f"{name} {datetime.datetime.now():%Y-%m-%d %H-%M-%S}"
    client = kfp.Client(host=host, namespace=namespace)
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / f"{name}.yaml"
        kfp.compiler.Compiler().compile(get_pipeline(name), str(package))
        spec, *platform = list(yaml.safe_load_all(package.read_text()))
        if enable_caching is not None:
            # kfp 2.17's own enable_caching override only reaches the top-level tasks, not
            # the extract tasks inside the ParallelFor: set it on every task here.
            for task in spec_tasks(spec).values():
                task["cachingOptions"] = {"enableCache": enable_caching}
        # Pod labels, annotations and PVC mounts take no parameters in KFP: written per run.
        apply_pod_settings(spec, platform, params)
        package.write_text(yaml.safe_dump_all([spec, *platform], sort_keys=False))
        result = client.create_run_from_pipeline_package(
            str(package), arguments=params, run_name=run_name, experiment_name=experiment
        )
    return run_name, result.run_id, f"{host.rstrip('/')}/#/runs/details/{result.run_id}"


def spec_tasks(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every task of a compiled PipelineSpec by name: the root DAG's and the nested DAGs'
    (ParallelFor and condition bodies)."""
    dags = [spec["root"]["dag"]]
    dags += [c["dag"] for c in spec.get("components", {}).values() if "dag" in c]
    return {name: task for dag in dags for name, task in dag["tasks"].items()}
