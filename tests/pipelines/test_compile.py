"""Every pipeline compiles, the committed YAML is current, and KFP's own loaders read it back."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from videollm.cluster import (
    EXTRACT_GPUS,
    GPU_RESOURCE,
    HF_CACHE_PVC,
    HF_HOME,
    HF_HOME_ANNOTATION,
    ISTIO_INJECT,
    JUDGE_KEY,
    JUDGE_SECRET,
    KUEUE_QUEUE_LABEL,
    TRAIN_RETRIES,
    TRAIN_SERVICE_ACCOUNT,
)
from videollm.errors import ConfigError
from videollm.images import PIPELINE_IMAGE, image
from videollm.kfp import sizing
from videollm.kfp.pod_settings import apply_pod_settings
from videollm.kfp.runner import compile_all, pipelines, source_dir, spec_tasks

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
    assert set(compiled) == set(pipelines()) == {"finetune", "extract_only", "benchmark"}


def test_committed_yaml_is_current(compiled):
    for name, path in compiled.items():
        committed = source_dir(name) / f"{name}.yaml"
        assert committed.is_file(), f"{committed} missing: run `videollm pipeline compile`"
        assert _docs(committed) == _docs(path), (
            f"{committed} is stale: run `videollm pipeline compile` and commit it"
        )


def test_committed_yaml_parses_as_a_pipeline_spec():
    from kfp import components

    for name in pipelines():
        path = source_dir(name) / f"{name}.yaml"
        spec = pipeline_spec_pb2.PipelineSpec()
        json_format.ParseDict(_docs(path)[0], spec)
        assert spec.pipeline_info.name == f"videollm-{name.replace('_', '-')}"
        loaded = components.load_component_from_file(str(path))
        assert loaded.name == spec.pipeline_info.name


def test_finetune_interface_and_wiring():
    spec, platform = _docs(source_dir("finetune") / "finetune.yaml")
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
    spec = _docs(source_dir(name) / f"{name}.yaml")[0]
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


def _platform_executors(name: str) -> dict[str, dict]:
    return _docs(source_dir(name) / f"{name}.yaml")[1]["platforms"]["kubernetes"]["deploymentSpec"][
        "executors"
    ]


def _param(value: str) -> str:
    """The pipeline parameter a resource placeholder reads (``{{$.inputs.parameters['x']}}``)."""
    match = re.fullmatch(r"\{\{\$\.inputs\.parameters\['pipelinechannel--(\w+)'\]\}\}", value)
    assert match, f"{value!r} is not read from a pipeline parameter"
    return match.group(1)


# Each executor's CPU/memory parameters, and the documented default they must have.
RESOURCES = {
    "exec-plan-shards": ("task_cpu", "task_memory"),
    "exec-extract": ("extract_cpu", "extract_memory"),
    "exec-convert": ("task_cpu", "task_memory"),
    "exec-train": ("task_cpu", "task_memory"),
    "exec-evaluate": ("eval_cpu", "eval_memory"),
    "exec-select": ("task_cpu", "task_memory"),
    "exec-package": ("task_cpu", "task_memory"),
    "exec-plan-benchmark": ("task_cpu", "task_memory"),
    "exec-extract-benchmark": ("extract_cpu", "extract_memory"),
    "exec-score-benchmark": ("eval_cpu", "eval_memory"),
    "exec-score-benchmark-2": ("eval_cpu", "eval_memory"),
    "exec-compare-benchmarks": ("task_cpu", "task_memory"),
}
DEFAULTS = {
    "task_cpu": sizing.TASK_CPU, "task_memory": sizing.TASK_MEMORY,
    "extract_cpu": sizing.EXTRACT_CPU, "extract_memory": sizing.EXTRACT_MEMORY,
    "eval_cpu": sizing.EVAL_CPU, "eval_memory": sizing.EVAL_MEMORY,
}  # fmt: skip


@pytest.mark.parametrize("name", ["finetune", "extract_only", "benchmark"])
def test_every_task_pod_keeps_istio_out_and_has_requests_and_limits(name):
    spec = _docs(source_dir(name) / f"{name}.yaml")[0]
    executors = spec["deploymentSpec"]["executors"]
    platform = _platform_executors(name)
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert set(executors) == set(platform) and set(executors) <= set(RESOURCES)
    for executor, body in executors.items():
        metadata = platform[executor]["podMetadata"]
        assert metadata["annotations"][ISTIO_INJECT] == "false", executor
        assert metadata["labels"][ISTIO_INJECT] == "false", executor
        resources = body["container"]["resources"]
        cpu, memory = RESOURCES[executor]
        for kind, param in (("Cpu", cpu), ("Memory", memory)):
            for bound in ("Request", "Limit"):
                assert _param(resources[f"resource{kind}{bound}"]) == param, executor
            assert params[param]["defaultValue"] == DEFAULTS[param]


def test_gpu_tasks_get_a_gpu_the_hf_cache_and_the_token():
    executors = _docs(source_dir("finetune") / "finetune.yaml")[0]["deploymentSpec"]["executors"]
    platform = _platform_executors("finetune")
    extract_gpus = executors["exec-extract"]["container"]["resources"]["accelerator"]
    assert extract_gpus["resourceCount"] == str(EXTRACT_GPUS)
    eval_gpus = executors["exec-evaluate"]["container"]["resources"]["accelerator"]
    assert _param(eval_gpus["resourceCount"]) == "eval_gpus"
    for executor in ("exec-extract", "exec-evaluate"):
        settings = platform[executor]
        assert settings["tolerations"][0]["key"] == GPU_RESOURCE
        [mount] = settings["pvcMount"]
        assert mount["mountPath"] == HF_HOME
        assert mount["pvcNameParameter"]["componentInputParameter"].endswith("hf_cache_pvc")
        # HF_HOME comes from the pod's own annotation: a cluster-only setting kfp.local skips.
        assert settings["podMetadata"]["annotations"][HF_HOME_ANNOTATION] == HF_HOME
        [field] = settings["fieldPathAsEnv"]
        assert field == {
            "name": "HF_HOME",
            "fieldPath": f"metadata.annotations['{HF_HOME_ANNOTATION}']",
        }
        [token] = [s for s in settings["secretAsEnv"] if s["keyToEnv"][0]["envVar"] == "HF_TOKEN"]
        assert token["optional"] is True
        assert token["secretNameParameter"]["componentInputParameter"].endswith("hf_token_secret")
    for executor in set(platform) - {"exec-extract", "exec-evaluate"}:
        assert "pvcMount" not in platform[executor], executor


def test_train_task_retries_with_backoff_and_hands_its_settings_to_the_job():
    spec = _docs(source_dir("finetune") / "finetune.yaml")[0]
    tasks = spec_tasks(spec)
    policy = tasks["train"]["retryPolicy"]
    assert policy["maxRetryCount"] == TRAIN_RETRIES and policy["backoffFactor"] > 1
    # Argo counts the window from the first attempt: it must hold every attempt at full length.
    window = int(policy["backoffMaxDuration"].rstrip("s"))
    assert window >= (TRAIN_RETRIES + 1) * sizing.TRAIN_TIMEOUT_HOURS * 3600
    assert [n for n, t in tasks.items() if "retryPolicy" in t] == ["train"]
    wiring = {
        "service_account": "train_service_account", "cpu": "train_cpu",
        "memory": "train_memory", "timeout_hours": "train_timeout_hours",
        "ttl_hours": "train_ttl_hours", "istio_sidecar": "istio_sidecar",
        "kueue_queue": "kueue_queue", "hf_cache_pvc": "hf_cache_pvc",
        "hf_token_secret": "hf_token_secret",
    }  # fmt: skip
    inputs = tasks["train"]["inputs"]["parameters"]
    for arg, param in wiring.items():
        assert inputs[arg] == {"componentInputParameter": param}, arg
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["train_service_account"]["defaultValue"] == TRAIN_SERVICE_ACCOUNT
    assert params["train_timeout_hours"]["defaultValue"] == sizing.TRAIN_TIMEOUT_HOURS
    assert params["train_ttl_hours"]["defaultValue"] == sizing.TRAIN_TTL_HOURS
    assert params["hf_cache_pvc"]["defaultValue"] == HF_CACHE_PVC
    assert params["eval_gpus"]["defaultValue"] == sizing.EVAL_GPUS
    assert "train_timeout_s" not in params and "service_account" not in params


@pytest.mark.parametrize(
    ("name", "gpu_batch"),
    [("finetune", "exec-extract"), ("extract_only", "exec-extract"),
     ("benchmark", "exec-extract-benchmark")],
)  # fmt: skip
def test_submit_time_pod_settings_rewrite_only_what_kfp_takes_as_literals(name, gpu_batch):
    spec, *platform = copy.deepcopy(_docs(source_dir(name) / f"{name}.yaml"))
    executors = platform[0]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    untouched = copy.deepcopy(executors)
    apply_pod_settings(spec, platform, {})  # the defaults: what was compiled
    assert executors == untouched

    apply_pod_settings(spec, platform, {"kueue_queue": "team-a", "istio_sidecar": True})
    assert executors[gpu_batch]["podMetadata"]["labels"] == {KUEUE_QUEUE_LABEL: "team-a"}
    for executor, settings in executors.items():
        assert ISTIO_INJECT not in settings["podMetadata"].get("annotations", {}), executor
        if executor != gpu_batch:
            assert settings["podMetadata"].get("labels", {}) == {}, executor

    apply_pod_settings(spec, platform, {"hf_cache_pvc": "", "hf_token_secret": ""})
    extract = executors[gpu_batch]
    assert "pvcMount" not in extract and "fieldPathAsEnv" not in extract
    assert HF_HOME_ANNOTATION not in extract["podMetadata"].get("annotations", {})
    [platform_secret] = extract["secretAsEnv"]  # the platform Secret stays, the token goes
    assert platform_secret["secretNameParameter"]["componentInputParameter"].endswith(
        "platform_secret"
    )
    with pytest.raises(ConfigError, match="kueue_queue: 'a queue' is not a valid"):
        apply_pod_settings(spec, platform, {"kueue_queue": "a queue"})


def test_benchmark_gpu_tasks_and_the_judge_key():
    spec, platform = _docs(source_dir("benchmark") / "benchmark.yaml")
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert {"suite_uri", "challenger_uri", "champion_uri", "suite_overrides"} <= set(params)
    assert params["champion_uri"]["defaultValue"] == "models:/videollm@champion"
    assert "defaultValue" not in params["challenger_uri"]  # required
    executors = spec["deploymentSpec"]["executors"]
    settings = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    extract_gpus = executors["exec-extract-benchmark"]["container"]["resources"]["accelerator"]
    assert extract_gpus["resourceCount"] == str(EXTRACT_GPUS)
    for executor in ("exec-score-benchmark", "exec-score-benchmark-2"):
        gpus = executors[executor]["container"]["resources"]["accelerator"]["resourceCount"]
        assert _param(gpus) == "eval_gpus"
        judge = [s for s in settings[executor]["secretAsEnv"] if s["keyToEnv"][0]["envVar"]
                 == JUDGE_KEY]  # fmt: skip
        assert judge[0]["optional"] is True
        assert judge[0]["secretNameParameter"]["componentInputParameter"].endswith("judge_secret")
    assert params["judge_secret"]["defaultValue"] == JUDGE_SECRET
    # Nothing is cached: the models are resolved from the registry at run time, and the suite
    # file may change behind its URI (extraction skips what it already made).
    tasks = spec_tasks(spec)
    assert not [n for n, t in tasks.items() if t.get("cachingOptions", {}).get("enableCache")]
    # Only the scoring tasks get the judge's key.
    assert [e for e, s in settings.items() if any(k["keyToEnv"][0]["envVar"] == JUDGE_KEY
            for k in s.get("secretAsEnv", []))] == ["exec-score-benchmark",
                                                   "exec-score-benchmark-2"]  # fmt: skip
