"""Every pipeline compiles, the committed YAML is current, and KFP's own loaders read it back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from videollm.images import PIPELINE_IMAGE, image
from videollm.pipeline.runner import compile_all, pipelines, source_dir, spec_tasks

INTERFACE = {
    "videos_uri", "annotations_uri", "annotation_format", "encoder", "llm", "recipe",
    "num_frames", "num_shards", "num_workers", "gpus_per_worker", "select_metric",
    "registered_model_name",
}  # fmt: skip


def _docs(path: Path) -> list[dict]:
    """The PipelineSpec, then the platform (Kubernetes) spec when there is one."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("compiled")
    return {path.stem: path for path in compile_all(out)}


def test_every_pipeline_compiles(compiled):
    assert set(compiled) == set(pipelines()) == {"finetune", "extract_only"}


def test_committed_yaml_is_current(compiled):
    for name, path in compiled.items():
        committed = source_dir() / f"{name}.yaml"
        assert committed.is_file(), f"{committed} missing: run `videollm pipeline compile`"
        assert _docs(committed) == _docs(path), (
            f"{committed} is stale: run `videollm pipeline compile` and commit it"
        )


def test_committed_yaml_parses_as_a_pipeline_spec():
    from kfp import components

    for name in pipelines():
        path = source_dir() / f"{name}.yaml"
        spec = pipeline_spec_pb2.PipelineSpec()
        json_format.ParseDict(_docs(path)[0], spec)
        assert spec.pipeline_info.name == f"videollm-{name.replace('_', '-')}"
        loaded = components.load_component_from_file(str(path))
        assert loaded.name == spec.pipeline_info.name


def test_finetune_interface_and_wiring():
    spec, platform = _docs(source_dir() / "finetune.yaml")
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert set(params) >= INTERFACE
    tasks = spec["root"]["dag"]["tasks"]
    assert {"plan-shards", "for-loop-1", "convert", "train", "evaluate", "select"} <= set(tasks)
    # Every executor runs in the one pipeline image.
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {PIPELINE_IMAGE}
    # Secrets and ConfigMaps come from parameters; extraction asks for a GPU.
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    extract = executors["exec-extract"]
    assert extract["secretAsEnv"][0]["secretNameParameter"]
    assert extract["tolerations"][0]["key"] == "nvidia.com/gpu"
    selector = extract["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"]
    assert selector.endswith("extract_node_selector")
    loop = spec["components"]["comp-for-loop-1"]["dag"]["tasks"]["extract"]
    assert loop["cachingOptions"]["enableCache"] is True
    assert tasks["train"]["cachingOptions"].get("enableCache", False) is False


@pytest.mark.parametrize("name", ["finetune", "extract_only"])
def test_cached_tasks_do_not_take_the_run_id(name):
    # KFP keys its cache on a task's inputs: one input set to the run's id would make every
    # run a cache miss, so an unchanged extract or convert would never be skipped.
    spec = _docs(source_dir() / f"{name}.yaml")[0]
    tasks = spec_tasks(spec)
    cached = {n: t for n, t in tasks.items() if t.get("cachingOptions", {}).get("enableCache")}
    assert {"extract"} <= set(cached) and ("convert" in cached) == (name == "finetune")
    for task_name, task in cached.items():
        inputs = task.get("inputs", {}).get("parameters", {})
        for param, value in inputs.items():
            constant = str(value.get("runtimeValue", {}).get("constant", ""))
            assert "pipeline_job" not in constant, f"{task_name}.{param} is the run's id"


def test_compile_for_another_registry(tmp_path):
    # After `make push REGISTRY=reg.example.com/ml`, the pipelines must run those images.
    cmd = [sys.executable, "-m", "videollm.cli.main", "pipeline", "compile"]
    cmd += ["--out", str(tmp_path), "--registry", "reg.example.com/ml"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ours = image("pipeline", registry="reg.example.com/ml")
    for name in pipelines():
        spec = _docs(tmp_path / f"{name}.yaml")[0]
        executors = spec["deploymentSpec"]["executors"].values()
        assert {e["container"]["image"] for e in executors} == {ours}, name
    params = _docs(tmp_path / "finetune.yaml")[0]["root"]["inputDefinitions"]["parameters"]
    assert params["image"]["defaultValue"] == ours  # the PyTorchJob pods' image too
