"""TrainJob manifests, validated strictly against Kubeflow Trainer v2.3.0's own CRD schema."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
import yaml
from crd_schema import CRD_DIR, crd_validator, errors
from kubernetes import client as k8s

from videollm.cluster import (
    CONFIG_KEYS,
    HF_HOME,
    ISTIO_INJECT,
    KUEUE_QUEUE_LABEL,
    RUN_LABEL,
    SECRET_KEYS,
)
from videollm.errors import ConfigError
from videollm.launcher.base import TrainJobSpec
from videollm.launcher.pytorchjob_pod import COMMAND
from videollm.launcher.trainjob_manifest import (
    NAMESPACED_RUNTIME,
    NODE_CONTAINER,
    NODE_JOB,
    build_trainjob,
)

TRAINER_DIR = CRD_DIR / "trainer-v2.3.0"
CRD_PATH = TRAINER_DIR / "trainer.kubeflow.org_trainjobs.yaml"
IMAGE = "registry.example.com/videollm:0.1.0"
ARGS = ["train", "--config", "demo", "--out", "s3://videollm/ckpt/run-1"]
RUN = "3f2a8c1e-5b7d-4e9a-a1c2-9d8e7f6a5b4c"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    if not CRD_PATH.exists():
        pytest.skip(f"TrainJob CRD not found at {CRD_PATH} (shared/k8s-crds not present)")
    return crd_validator(CRD_PATH, "v1alpha1")


def one_by_eight() -> TrainJobSpec:
    return TrainJobSpec(name="videollm-1x8", args=ARGS, image=IMAGE, gpus_per_worker=8)


def two_nodes_zero3() -> TrainJobSpec:
    """What the pipeline asks for: 2 nodes × 4 GPUs, ZeRO-3, Kueue, no Istio, the HF cache."""
    return TrainJobSpec(
        name="videollm-2x4-zero3",
        args=[*ARGS, "train.deepspeed=zero3"],
        image=IMAGE,
        num_workers=2,
        gpus_per_worker=4,
        cpu="16",
        memory="160Gi",
        cpu_limit="32",
        memory_limit="200Gi",
        shm_size="64Gi",
        namespace="ml-team",
        service_account="videollm-train",
        node_selector={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        tolerations=[
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "spot", "operator": "Equal", "value": "true", "tolerationSeconds": 300},
        ],
        image_pull_secrets=["regcred"],
        env={"NCCL_DEBUG": "WARN"},
        env_from_secrets=["videollm-credentials"],
        env_from_config_maps=["videollm-platform"],
        labels={RUN_LABEL: RUN, KUEUE_QUEUE_LABEL: "team-a"},
        pod_annotations={ISTIO_INJECT: "false"},
        active_deadline_s=48 * 3600,
        ttl_after_finished_s=24 * 3600,
        hf_cache_pvc="videollm-hf-cache",
        hf_token_secret="videollm-hf-token",
    )


def cpu_only() -> TrainJobSpec:
    return TrainJobSpec(
        name="videollm-cpu",
        args=ARGS,
        image=IMAGE,
        num_workers=2,
        procs_per_worker=2,
        cpu="4",
        memory="8Gi",
        runtime="torch-distributed",
    )


def node_patch(doc: dict[str, Any]) -> dict[str, Any]:
    """The pod template patch of the ``node`` replicated job."""
    (patch,) = doc["spec"]["runtimePatches"]
    (job,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    assert job["name"] == NODE_JOB
    return job["template"]["spec"]["template"]


@pytest.mark.parametrize("make", [one_by_eight, two_nodes_zero3, cpu_only])
def test_manifest_matches_crd_schema(validator: jsonschema.Draft7Validator, make: Any) -> None:
    doc = build_trainjob(make())
    assert errors(validator, doc) == []


def test_one_node_eight_gpus() -> None:
    doc = build_trainjob(one_by_eight())
    assert doc["apiVersion"] == "trainer.kubeflow.org/v1alpha1" and doc["kind"] == "TrainJob"
    assert doc["spec"]["runtimeRef"] == {
        "apiGroup": "trainer.kubeflow.org",
        "kind": "ClusterTrainingRuntime",
        "name": "videollm-torch",
    }
    trainer = doc["spec"]["trainer"]
    assert trainer["image"] == IMAGE
    # torchrun (through the exit-code wrapper) reads the runtime's PET_* rendezvous env.
    assert trainer["command"] == COMMAND and trainer["args"] == ARGS
    assert trainer["numNodes"] == 1 and trainer["numProcPerNode"] == 8
    assert trainer["resourcesPerNode"] == {"limits": {"nvidia.com/gpu": "8"}}
    assert "activeDeadlineSeconds" not in doc["spec"]
    pod = node_patch(doc)
    assert "annotations" not in pod["metadata"]
    assert pod["spec"]["containers"][0]["name"] == NODE_CONTAINER


def test_two_nodes_zero3_sets_every_pipeline_setting() -> None:
    doc = build_trainjob(two_nodes_zero3(), NAMESPACED_RUNTIME)
    spec = doc["spec"]
    assert spec["runtimeRef"]["kind"] == "TrainingRuntime"
    assert spec["activeDeadlineSeconds"] == 48 * 3600
    trainer = spec["trainer"]
    assert trainer["args"][-1] == "train.deepspeed=zero3"
    assert trainer["numNodes"] == 2 and trainer["numProcPerNode"] == 4
    assert trainer["resourcesPerNode"] == {
        "requests": {"cpu": "16", "memory": "160Gi"},
        "limits": {"cpu": "32", "memory": "200Gi", "nvidia.com/gpu": "4"},
    }
    env = {e["name"]: e for e in trainer["env"]}
    assert env["NCCL_DEBUG"] == {"name": "NCCL_DEBUG", "value": "WARN"}
    assert env["HF_HOME"]["value"] == HF_HOME
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "videollm-hf-token"
    # No envFrom in a TrainJob: each platform key is its own optional reference.
    for key in SECRET_KEYS:
        ref = env[key]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "videollm-credentials", "key": key, "optional": True}
    for key in CONFIG_KEYS:
        ref = env[key]["valueFrom"]["configMapKeyRef"]
        assert ref == {"name": "videollm-platform", "key": key, "optional": True}
    # Kueue admits the TrainJob: the queue label is on it, not on its pods.
    labels = doc["metadata"]["labels"]
    assert labels[KUEUE_QUEUE_LABEL] == "team-a" and labels[RUN_LABEL] == RUN
    pod = node_patch(doc)
    assert KUEUE_QUEUE_LABEL not in pod["metadata"]["labels"]
    assert pod["metadata"]["labels"][RUN_LABEL] == RUN
    assert pod["metadata"]["annotations"] == {ISTIO_INJECT: "false"}
    pod_spec = pod["spec"]
    assert pod_spec["serviceAccountName"] == "videollm-train"
    assert pod_spec["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pod_spec["tolerations"][1] == {
        "key": "spot", "operator": "Equal", "value": "true", "tolerationSeconds": 300
    }  # fmt: skip
    assert pod_spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Gi"}
    assert volumes["hf-cache"]["persistentVolumeClaim"] == {"claimName": "videollm-hf-cache"}
    (container,) = pod_spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"dshm": "/dev/shm", "tmp": "/tmp", "home": "/home/videollm",
                      "hf-cache": HF_HOME}  # fmt: skip


def test_cpu_only_has_no_gpu_resource() -> None:
    doc = build_trainjob(cpu_only())
    trainer = doc["spec"]["trainer"]
    assert doc["spec"]["runtimeRef"]["name"] == "torch-distributed"
    assert trainer["numProcPerNode"] == 2
    assert "nvidia.com/gpu" not in str(trainer["resourcesPerNode"])


def test_owner_reference() -> None:
    owner = k8s.V1OwnerReference(
        api_version="argoproj.io/v1alpha1", kind="Workflow", name="finetune-x7k2p", uid="5e3b",
        block_owner_deletion=False,
    )  # fmt: skip
    doc = build_trainjob(one_by_eight(), owner=owner)
    assert doc["metadata"]["ownerReferences"] == [
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": "finetune-x7k2p",
         "uid": "5e3b", "blockOwnerDeletion": False}
    ]  # fmt: skip


def test_validation_catches_typos(validator: jsonschema.Draft7Validator) -> None:
    """The negative control: a misspelt field anywhere is rejected, not pruned away."""
    good = build_trainjob(two_nodes_zero3())
    typo = copy.deepcopy(good)
    typo["spec"]["trainer"]["numProcsPerNode"] = typo["spec"]["trainer"].pop("numProcPerNode")
    assert any("numProcsPerNode" in e for e in errors(validator, typo))
    deep = copy.deepcopy(good)
    node_patch(deep)["spec"]["nodeSelecter"] = node_patch(deep)["spec"].pop("nodeSelector")
    assert any("nodeSelecter" in e for e in errors(validator, deep))
    as_string = copy.deepcopy(good)
    as_string["spec"]["trainer"]["numNodes"] = "2"
    assert any(e.startswith("spec.trainer.numNodes:") for e in errors(validator, as_string))
    no_runtime = copy.deepcopy(good)
    del no_runtime["spec"]["runtimeRef"]
    assert any("runtimeRef" in e for e in errors(validator, no_runtime))


@pytest.mark.parametrize("runtime", ["runtime_torch_distributed.yaml"])
def test_the_patch_targets_the_stock_torch_runtime(runtime: str) -> None:
    """The patched replicated job and container exist in the runtime Trainer ships."""
    if not (TRAINER_DIR / runtime).is_file():
        pytest.skip(f"{TRAINER_DIR / runtime} not found (shared/k8s-crds not present)")
    body = yaml.safe_load((TRAINER_DIR / runtime).read_text())
    assert "torch" in body["spec"]["mlPolicy"]
    jobs = {j["name"]: j for j in body["spec"]["template"]["spec"]["replicatedJobs"]}
    node = jobs[NODE_JOB]["template"]
    assert node["metadata"]["labels"]["trainer.kubeflow.org/trainjob-ancestor-step"] == "trainer"
    containers = node["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == [NODE_CONTAINER]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Videollm_7b"}, "must be a DNS-1035 label"),
        ({"image": ""}, "image is required"),
        ({"runtime": ""}, "trainjob_runtime is empty"),
        ({"num_workers": 0}, "num_workers must be at least 1"),
        ({"gpus_per_worker": -1}, "gpus_per_worker must be 0 or more"),
        ({"active_deadline_s": 0}, "active_deadline_s must be at least 1"),
        ({"tolerations": [{"key": "a", "opertor": "Exists"}]}, "unknown keys"),
    ],
)
def test_invalid_specs_are_config_errors(change: dict[str, Any], message: str) -> None:
    spec = one_by_eight()
    for key, value in change.items():
        setattr(spec, key, value)
    with pytest.raises(ConfigError, match=message):
        build_trainjob(spec)


def test_the_train_task_passes_its_runtime_setting() -> None:
    from videollm.kfp.train_task import TrainTaskArgs, job_spec

    args = TrainTaskArgs("s3://b/records", "s3://b/features", "s3://b/runs/r1/checkpoint", "llm")
    assert job_spec(args).runtime == "videollm-torch"
    args.trainjob_runtime = "torch-distributed"
    args.image = IMAGE
    doc = build_trainjob(job_spec(args))
    assert doc["spec"]["runtimeRef"]["name"] == "torch-distributed"
    assert doc["spec"]["trainer"]["args"][:2] == ["train", "--config"]
