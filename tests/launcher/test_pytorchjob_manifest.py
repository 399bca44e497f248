"""PyTorchJob manifests, validated against the training operator's own CRD schema."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
from crd_schema import CRD_DIR, crd_validator
from crd_schema import errors as _errors
from kubernetes import client as k8s

from videollm.cluster import HF_HOME, HF_TOKEN_KEY, ISTIO_INJECT, RUN_LABEL
from videollm.cluster import KUEUE_QUEUE_LABEL as KUEUE
from videollm.errors import ConfigError
from videollm.launcher.base import TrainJobSpec
from videollm.launcher.pytorchjob_manifest import build_pytorchjob, manifest_dict
from videollm.launcher.pytorchjob_pod import COMMAND

CRD_PATH = CRD_DIR / "kubeflow.org_pytorchjobs.yaml"
IMAGE = "registry.example.com/videollm:0.1.0"
ARGS = ["train", "--config", "demo", "--out", "s3://videollm/ckpt/run-1"]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    if not CRD_PATH.exists():
        pytest.skip(f"PyTorchJob CRD not found at {CRD_PATH} (shared/k8s-crds not present)")
    return crd_validator(CRD_PATH, "v1")


def one_by_one() -> TrainJobSpec:
    return TrainJobSpec(name="videollm-1x1", args=ARGS, image=IMAGE, gpus_per_worker=1)


def two_by_eight() -> TrainJobSpec:
    return TrainJobSpec(
        name="videollm-2x8",
        args=ARGS,
        image=IMAGE,
        num_workers=2,
        gpus_per_worker=8,
        cpu="64",
        memory="512Gi",
        shm_size="64Gi",
        namespace="ml-team",
        service_account="videollm-trainer",
        node_selector={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        tolerations=[
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "spot", "operator": "Equal", "value": "true", "tolerationSeconds": 300},
        ],
        image_pull_secrets=["regcred"],
        env={"NCCL_DEBUG": "WARN", "MLFLOW_EXPERIMENT_NAME": "videollm"},
        env_from_secrets=["videollm-platform"],
        env_from_config_maps=["videollm-endpoints"],
        labels={"team": "vision"},
    )


def cpu_only() -> TrainJobSpec:
    return TrainJobSpec(
        name="videollm-cpu",
        args=ARGS,
        image=IMAGE,
        num_workers=2,
        gpus_per_worker=0,
        procs_per_worker=2,
        cpu="4",
        memory="8Gi",
    )


def cluster_7b() -> TrainJobSpec:
    """What the pipeline asks for on a Kubeflow cluster: deadline, TTL, limits, HF cache."""
    return TrainJobSpec(
        name="videollm-7b",
        args=ARGS,
        image=IMAGE,
        num_workers=2,
        gpus_per_worker=4,
        cpu="16",
        memory="160Gi",
        cpu_limit="32",
        memory_limit="200Gi",
        namespace="ml-team",
        service_account="videollm-train",
        labels={RUN_LABEL: "3f2a8c1e-5b7d-4e9a-a1c2-9d8e7f6a5b4c", KUEUE: "team-a"},
        pod_annotations={ISTIO_INJECT: "false"},
        env={"NCCL_DEBUG": "WARN"},
        active_deadline_s=48 * 3600,
        ttl_after_finished_s=24 * 3600,
        hf_cache_pvc="videollm-hf-cache",
        hf_token_secret="videollm-hf-token",
    )


def _container(doc: dict[str, Any], replica: str = "Master") -> dict[str, Any]:
    containers = doc["spec"]["pytorchReplicaSpecs"][replica]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _pod(doc: dict[str, Any], replica: str = "Master") -> dict[str, Any]:
    return doc["spec"]["pytorchReplicaSpecs"][replica]["template"]["spec"]


@pytest.mark.parametrize("make", [one_by_one, two_by_eight, cpu_only, cluster_7b])
def test_manifest_matches_crd_schema(validator: jsonschema.Draft7Validator, make: Any) -> None:
    doc = manifest_dict(build_pytorchjob(make()))
    assert _errors(validator, doc) == []
    # What goes over the wire is plain JSON (no model objects left over).
    assert json.loads(json.dumps(doc)) == doc


def test_one_node_one_gpu() -> None:
    doc = manifest_dict(build_pytorchjob(one_by_one()))
    assert doc["apiVersion"] == "kubeflow.org/v1"
    assert doc["kind"] == "PyTorchJob"
    assert doc["metadata"] == {
        "name": "videollm-1x1",
        "namespace": "default",
        "labels": {"app.kubernetes.io/managed-by": "videollm"},
    }
    replicas = doc["spec"]["pytorchReplicaSpecs"]
    assert set(replicas) == {"Master"}
    assert replicas["Master"]["replicas"] == 1
    assert replicas["Master"]["restartPolicy"] == "ExitCode"
    assert doc["spec"]["nprocPerNode"] == "1"
    # No deadline and no TTL unless asked for.
    assert doc["spec"]["runPolicy"] == {"cleanPodPolicy": "None", "backoffLimit": 3}
    container = _container(doc)
    assert container["name"] == "pytorch"
    assert container["command"] == [
        "python", "-m", "videollm.launcher.entry", "-m", "videollm.cli.main", *ARGS
    ]  # fmt: skip
    assert container["resources"] == {"limits": {"nvidia.com/gpu": "1"}}
    assert container["volumeMounts"] == [
        {"name": "dshm", "mountPath": "/dev/shm"},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "home", "mountPath": "/home/videollm"},
    ]
    assert _pod(doc)["volumes"] == [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "home", "emptyDir": {}},
    ]
    # Unset options stay out of the manifest rather than appearing as nulls or empties.
    for key in ("nodeSelector", "tolerations", "imagePullSecrets", "serviceAccountName"):
        assert key not in _pod(doc)
    assert "env" not in container and "envFrom" not in container
    assert "annotations" not in replicas["Master"]["template"]["metadata"]
    assert "ownerReferences" not in doc["metadata"]


def test_two_nodes_eight_gpus() -> None:
    doc = manifest_dict(build_pytorchjob(two_by_eight()))
    replicas = doc["spec"]["pytorchReplicaSpecs"]
    assert {k: v["replicas"] for k, v in replicas.items()} == {"Master": 1, "Worker": 1}
    assert doc["spec"]["nprocPerNode"] == "8"
    assert doc["metadata"]["namespace"] == "ml-team"
    assert doc["metadata"]["labels"] == {
        "team": "vision",
        "app.kubernetes.io/managed-by": "videollm",
    }
    for replica in ("Master", "Worker"):
        container, pod = _container(doc, replica), _pod(doc, replica)
        assert container["name"] == "pytorch"
        assert container["command"] == [*COMMAND, *ARGS]
        assert container["resources"] == {
            "limits": {"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": "8"},
            "requests": {"cpu": "64", "memory": "512Gi"},
        }
        assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
        assert pod["volumes"][0] == {
            "name": "dshm",
            "emptyDir": {"medium": "Memory", "sizeLimit": "64Gi"},
        }
        assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
        assert pod["tolerations"] == [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "spot", "operator": "Equal", "value": "true", "tolerationSeconds": 300},
        ]
        assert pod["imagePullSecrets"] == [{"name": "regcred"}]
        assert pod["serviceAccountName"] == "videollm-trainer"
        assert container["envFrom"] == [
            {"secretRef": {"name": "videollm-platform"}},
            {"configMapRef": {"name": "videollm-endpoints"}},
        ]
        assert container["env"] == [
            {"name": "NCCL_DEBUG", "value": "WARN"},
            {"name": "MLFLOW_EXPERIMENT_NAME", "value": "videollm"},
        ]


def test_cpu_only_has_no_gpu_resource() -> None:
    doc = manifest_dict(build_pytorchjob(cpu_only()))
    replicas = doc["spec"]["pytorchReplicaSpecs"]
    assert {k: v["replicas"] for k, v in replicas.items()} == {"Master": 1, "Worker": 1}
    assert doc["spec"]["nprocPerNode"] == "2"
    assert "nvidia.com/gpu" not in json.dumps(doc)
    assert _container(doc, "Worker")["resources"] == {
        "limits": {"cpu": "4", "memory": "8Gi"},
        "requests": {"cpu": "4", "memory": "8Gi"},
    }


def test_four_nodes_have_three_workers() -> None:
    spec = one_by_one()
    spec.num_workers = 4
    replicas = manifest_dict(build_pytorchjob(spec))["spec"]["pytorchReplicaSpecs"]
    assert {k: v["replicas"] for k, v in replicas.items()} == {"Master": 1, "Worker": 3}


def test_validation_catches_broken_manifests(validator: jsonschema.Draft7Validator) -> None:
    good = manifest_dict(build_pytorchjob(two_by_eight()))

    wrong_type = copy.deepcopy(good)
    wrong_type["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = "two"
    assert any(
        e.startswith("spec.pytorchReplicaSpecs.Worker.replicas:")
        for e in _errors(validator, wrong_type)
    )

    # A misspelt field would be pruned silently by the API server; the strict schema says so.
    typo = copy.deepcopy(good)
    typo["spec"]["nprocsPerNode"] = typo["spec"].pop("nprocPerNode")
    assert any("nprocsPerNode" in e for e in _errors(validator, typo))

    # nprocPerNode is a string in the v1 CRD, not int-or-string.
    as_int = copy.deepcopy(good)
    as_int["spec"]["nprocPerNode"] = 8
    assert any(e.startswith("spec.nprocPerNode:") for e in _errors(validator, as_int))

    no_replica_specs = copy.deepcopy(good)
    del no_replica_specs["spec"]["pytorchReplicaSpecs"]
    assert any("pytorchReplicaSpecs" in e for e in _errors(validator, no_replica_specs))


def test_int_or_string_quantities(validator: jsonschema.Draft7Validator) -> None:
    doc = manifest_dict(build_pytorchjob(one_by_one()))
    volume = doc["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["volumes"][0]
    limits = _container(doc)["resources"]["limits"]

    limits["nvidia.com/gpu"] = 1  # an integer quantity is as valid as "1"
    volume["emptyDir"]["sizeLimit"] = 17179869184
    assert _errors(validator, doc) == []

    volume["emptyDir"]["sizeLimit"] = "16 GB"  # not a Kubernetes quantity
    path = "spec.pytorchReplicaSpecs.Master.template.spec.volumes.0.emptyDir.sizeLimit:"
    assert [e for e in _errors(validator, doc) if e.startswith(path)]


def test_deadline_ttl_and_exit_code_policy(validator: jsonschema.Draft7Validator) -> None:
    doc = manifest_dict(build_pytorchjob(cluster_7b()))
    assert doc["spec"]["runPolicy"] == {
        "cleanPodPolicy": "None",  # failed pods (and logs) stay until the TTL removes the job
        "backoffLimit": 3,
        "activeDeadlineSeconds": 172800,
        "ttlSecondsAfterFinished": 86400,
    }
    for replica in doc["spec"]["pytorchReplicaSpecs"].values():
        assert replica["restartPolicy"] == "ExitCode"
    assert _errors(validator, doc) == []
    # The CRD types them as integers: a string (e.g. from a YAML parameter) is refused.
    doc["spec"]["runPolicy"]["activeDeadlineSeconds"] = "172800"
    assert any(
        e.startswith("spec.runPolicy.activeDeadlineSeconds:") for e in _errors(validator, doc)
    )


def test_training_pods_are_locked_down() -> None:
    doc = manifest_dict(build_pytorchjob(cluster_7b()))
    for replica in ("Master", "Worker"):
        pod, container = _pod(doc, replica), _container(doc, replica)
        assert pod["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] == "videollm-train"
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 1000,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        # With the root read-only, every place the processes write is a volume.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts == {
            "/dev/shm": "dshm", "/tmp": "tmp", "/home/videollm": "home", HF_HOME: "hf-cache"
        }  # fmt: skip
        assert container["command"][: len(COMMAND)] == COMMAND
        template = doc["spec"]["pytorchReplicaSpecs"][replica]["template"]
        assert template["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
        assert template["metadata"]["labels"][RUN_LABEL] == "3f2a8c1e-5b7d-4e9a-a1c2-9d8e7f6a5b4c"
        # Kueue admits the job as a whole: its queue label is on the job, not on the pods.
        assert KUEUE not in template["metadata"]["labels"]
    assert doc["metadata"]["labels"][KUEUE] == "team-a"


def test_hf_cache_volume_and_optional_token() -> None:
    doc = manifest_dict(build_pytorchjob(cluster_7b()))
    container, pod = _container(doc), _pod(doc)
    assert {"name": "hf-cache", "persistentVolumeClaim": {"claimName": "videollm-hf-cache"}} in (
        pod["volumes"]
    )
    assert container["env"] == [
        {"name": "NCCL_DEBUG", "value": "WARN"},
        {"name": "HF_HOME", "value": HF_HOME},
        {
            "name": "HF_TOKEN",
            "valueFrom": {
                "secretKeyRef": {"name": "videollm-hf-token", "key": HF_TOKEN_KEY, "optional": True}
            },
        },
    ]
    # Neither without a PVC or Secret: HF_HOME stays the image's (in the home emptyDir).
    plain = manifest_dict(build_pytorchjob(one_by_one()))
    assert "env" not in _container(plain)
    assert "hf-cache" not in json.dumps(plain)


def test_limits_default_to_the_requests() -> None:
    doc = manifest_dict(build_pytorchjob(cluster_7b()))
    assert _container(doc)["resources"] == {
        "requests": {"cpu": "16", "memory": "160Gi"},
        "limits": {"cpu": "32", "memory": "200Gi", "nvidia.com/gpu": "4"},
    }
    spec = cluster_7b()
    spec.cpu_limit = spec.memory_limit = None
    assert _container(manifest_dict(build_pytorchjob(spec)))["resources"]["limits"] == {
        "cpu": "16",
        "memory": "160Gi",
        "nvidia.com/gpu": "4",
    }


def test_owner_reference() -> None:
    owner = k8s.V1OwnerReference(
        api_version="argoproj.io/v1alpha1", kind="Workflow", name="finetune-x7k2p",
        uid="5e3b1f7a-2c9d-4a86-8f14-b7e0d2c6a391", block_owner_deletion=False,
    )  # fmt: skip
    doc = manifest_dict(build_pytorchjob(cluster_7b(), owner))
    assert doc["metadata"]["ownerReferences"] == [
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": "finetune-x7k2p",
         "uid": "5e3b1f7a-2c9d-4a86-8f14-b7e0d2c6a391", "blockOwnerDeletion": False}
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"active_deadline_s": 0}, "active_deadline_s must be at least 1"),
        ({"ttl_after_finished_s": -1}, "ttl_after_finished_s must be between 0"),
        ({"ttl_after_finished_s": 2**31}, "ttl_after_finished_s must be between 0"),
        ({"name": "VideoLLM_Train"}, "DNS-1035"),
        ({"name": "1-videollm"}, "DNS-1035"),
        ({"name": "v" * 64}, "DNS-1035"),
        ({"image": ""}, "image is required"),
        ({"num_workers": 0}, "num_workers"),
        ({"gpus_per_worker": -1}, "gpus_per_worker"),
        ({"tolerations": [{"key": "a", "effects": "NoSchedule"}]}, "unknown keys"),
    ],
)
def test_invalid_specs_are_config_errors(change: dict[str, Any], message: str) -> None:
    spec = one_by_one()
    for key, value in change.items():
        setattr(spec, key, value)
    with pytest.raises(ConfigError, match=message):
        build_pytorchjob(spec)
