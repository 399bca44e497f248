"""The chart's Kubeflow Trainer v2 runtime (trainer.runtime): valid against Trainer v2.3.0's own
CRD schemas, shaped like the stock torch-distributed runtime, running the pods the PyTorchJob
launcher runs (image, entry point, platform env, token-less account, locked down, HF cache), and
the RBAC the `trainjob` launcher needs: TrainJobs and namespaced runtimes in the Role, a
ClusterRole for reading a ClusterTrainingRuntime only where the chart installs one."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from chart_objects import CHART, NAMESPACE, values_of

from videollm import cluster
from videollm.images import image
from videollm.launcher.pytorchjob_pod import COMMAND, HOME, UID

# shared/ sits next to the repository checkout.
TRAINER_DIR = Path(__file__).parents[2].parent / "shared" / "k8s-crds" / "trainer-v2.3.0"
CRD_FILES = {
    "ClusterTrainingRuntime": "trainer.kubeflow.org_clustertrainingruntimes.yaml",
    "TrainingRuntime": "trainer.kubeflow.org_trainingruntimes.yaml",
}
#: Value set -> the runtime kind it renders.
KIND_OF = {"trainer-runtime": "ClusterTrainingRuntime", "profile-namespace": "TrainingRuntime"}
ENABLE = ("--set", "trainer.runtime.enabled=true")


def _structural(schema: dict[str, Any]) -> dict[str, Any]:
    """The CRD schema as a strict JSON Schema: undeclared fields, which the API server would
    silently prune, fail validation instead; int-or-string fields accept both. (As
    tests/launcher/test_pytorchjob_manifest.py does for the PyTorchJob CRD.)"""
    out = dict(schema)
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out and "type" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in out:
        out["properties"] = {k: _structural(v) for k, v in out["properties"].items()}
        preserve = out.get("x-kubernetes-preserve-unknown-fields")
        if "additionalProperties" not in out and not preserve:
            out["additionalProperties"] = False
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(out["additionalProperties"])
    if isinstance(out.get("items"), dict):
        out["items"] = _structural(out["items"])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in out:
            out[key] = [_structural(s) for s in out[key]]
    return out


@pytest.fixture(scope="module")
def validators() -> dict[str, jsonschema.Draft7Validator]:
    """Runtime kind -> a strict validator of its v1alpha1 CRD schema."""
    if not TRAINER_DIR.is_dir():
        pytest.skip(f"Trainer CRDs not found at {TRAINER_DIR} (shared/k8s-crds not present)")
    out = {}
    for kind, name in CRD_FILES.items():
        crd = yaml.safe_load((TRAINER_DIR / name).read_text())
        assert crd["spec"]["names"]["kind"] == kind
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
        schema = _structural(version["schema"]["openAPIV3Schema"])
        jsonschema.Draft7Validator.check_schema(schema)
        out[kind] = jsonschema.Draft7Validator(schema)
    return out


def _errors(validator: jsonschema.Draft7Validator, doc: dict[str, Any]) -> list[str]:
    return sorted(
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(doc)
    )


def _runtime(result) -> dict:
    (runtime,) = [o for o in result.objects if o["kind"] in CRD_FILES]
    return runtime


def _node_job(runtime: dict) -> dict:
    (job,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    return job


def _pod(runtime: dict) -> dict:
    return _node_job(runtime)["template"]["spec"]["template"]


def _container(runtime: dict) -> dict:
    (container,) = _pod(runtime)["spec"]["containers"]
    return container


def _volume_at(runtime: dict, path: str) -> dict:
    mount = next(m for m in _container(runtime)["volumeMounts"] if m["mountPath"] == path)
    return next(v for v in _pod(runtime)["spec"]["volumes"] if v["name"] == mount["name"])


# --- the CRD schema ------------------------------------------------------------------------------


@pytest.mark.parametrize("value_set", list(KIND_OF))
def test_runtime_is_valid_against_the_trainer_crd(rendered, validators, value_set):
    runtime = _runtime(rendered[value_set])
    assert runtime["apiVersion"] == "trainer.kubeflow.org/v1alpha1"
    assert runtime["kind"] == KIND_OF[value_set]
    assert _errors(validators[runtime["kind"]], runtime) == []
    # Helm puts a namespaced object in the release namespace; a cluster-scoped one has none.
    assert "namespace" not in runtime["metadata"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "mlPolicy", "torch", "numProcPerNod"), 8),  # a typo'd field
        (("spec", "template", "spec", "replicatedJobs", 0, "replica"), 2),
        (("spec", "mlPolicy", "numNodes"), "two"),  # a wrong type
    ],
)
def test_crd_validation_catches_a_broken_runtime(rendered, validators, path, value):
    """The validation above is strict: an unknown field or a wrong type fails it."""
    broken = copy.deepcopy(_runtime(rendered["trainer-runtime"]))
    parent = broken
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    errors = _errors(validators["ClusterTrainingRuntime"], broken)
    assert errors and all(str(path[-2]) in e for e in errors), errors
    container = _container(broken)
    container["volumeMount"] = container.pop("volumeMounts")
    assert any("volumeMount" in e for e in _errors(validators["ClusterTrainingRuntime"], broken))


def test_runtime_is_shaped_like_the_stock_torch_runtime(rendered):
    """The torch plugin finds the `node` job and container; the TrainJob's trainer fields
    apply to the job labelled as the trainer step."""
    path = TRAINER_DIR / "runtime_torch_distributed.yaml"
    if not path.is_file():
        pytest.skip(f"Trainer's stock runtime not found at {path} (shared/k8s-crds not present)")
    stock = yaml.safe_load(path.read_text())
    runtime = _runtime(rendered["trainer-runtime"])
    assert runtime["spec"]["mlPolicy"] == stock["spec"]["mlPolicy"]
    framework = "trainer.kubeflow.org/framework"
    assert runtime["metadata"]["labels"][framework] == stock["metadata"]["labels"][framework]
    ours, theirs = _node_job(runtime), _node_job(stock)
    assert ours["name"] == theirs["name"] == "node"
    assert ours["template"]["metadata"] == theirs["template"]["metadata"]
    assert _container(runtime)["name"] == _container(stock)["name"] == "node"
    assert runtime["metadata"]["name"] == values_of("trainer-runtime")["trainer"]["runtime"]["name"]


def test_both_kinds_render_the_same_runtime(template):
    cluster_kind = _runtime(template(*ENABLE))
    namespaced = _runtime(template(*ENABLE, "--set", "trainer.runtime.kind=TrainingRuntime"))
    assert (cluster_kind["kind"], namespaced["kind"]) == (
        "ClusterTrainingRuntime",
        "TrainingRuntime",
    )
    assert cluster_kind["metadata"]["name"] == namespaced["metadata"]["name"] == "videollm-torch"
    assert cluster_kind["spec"] == namespaced["spec"]


# --- the training pods ---------------------------------------------------------------------------


def test_runtime_pods_run_the_pipeline_image_like_the_pytorchjob_pods(template):
    runtime = _runtime(template(*ENABLE))
    pod, container = _pod(runtime), _container(runtime)
    assert container["image"] == image("pipeline")
    assert container["command"] == COMMAND  # a TrainJob adds the CLI arguments
    env_from = container["envFrom"]
    assert {"configMapRef": {"name": cluster.PLATFORM_CONFIG}} in env_from
    assert {"secretRef": {"name": cluster.PLATFORM_SECRET}} in env_from
    assert pod["spec"]["serviceAccountName"] == cluster.TRAIN_SERVICE_ACCOUNT
    assert pod["spec"]["automountServiceAccountToken"] is False
    # /dev/shm: memory-backed, as large as the PyTorchJob pods' default.
    assert _volume_at(runtime, "/dev/shm")["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    shm = _volume_at(
        _runtime(template(*ENABLE, "--set", "trainer.runtime.shmSize=48Gi")), "/dev/shm"
    )
    assert shm["emptyDir"]["sizeLimit"] == "48Gi"


def test_runtime_pods_are_locked_down_and_write_only_to_volumes(rendered):
    runtime = _runtime(rendered["trainer-runtime"])
    pod, container = _pod(runtime), _container(runtime)
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == UID
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # The root file system is read-only: every place the processes write is an emptyDir.
    for path in ("/tmp", HOME, "/dev/shm"):
        assert "emptyDir" in _volume_at(runtime, path), path
    assert container["image"] == "registry.example.com/ml/videollm-pipeline:0.1.0"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_runtime_pods_opt_out_of_the_istio_sidecar(rendered, template):
    """A sidecar never exits, so a training pod with one would never complete."""
    for value_set in KIND_OF:
        meta = _pod(_runtime(rendered[value_set]))["metadata"]
        assert meta["labels"][cluster.ISTIO_INJECT] == "false", value_set
        assert meta["annotations"][cluster.ISTIO_INJECT] == "false", value_set
    meta = _pod(_runtime(template(*ENABLE, "--set", "istio.disableBatchSidecars=false")))[
        "metadata"
    ]
    assert cluster.ISTIO_INJECT not in meta["labels"] and "annotations" not in meta


def test_runtime_pods_mount_the_hf_cache_and_read_the_hub_token(rendered, template):
    runtime = _runtime(rendered["trainer-runtime"])
    variables = {e["name"]: e for e in _container(runtime)["env"]}
    assert variables["HF_HOME"]["value"] == cluster.HF_HOME
    claim = _volume_at(runtime, cluster.HF_HOME)["persistentVolumeClaim"]["claimName"]
    assert claim == cluster.HF_CACHE_PVC
    token = {"name": cluster.HF_TOKEN_SECRET, "key": cluster.HF_TOKEN_KEY, "optional": True}
    assert variables["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == token
    # The profile set's token value is in its Secret only, never in the runtime.
    profile = str(_runtime(rendered["profile-namespace"]))
    assert values_of("profile-namespace")["hfToken"]["value"] not in profile
    off = _runtime(template(*ENABLE, "--set", "hfCache.enabled=false"))
    assert "HF_HOME" not in {e["name"] for e in _container(off)["env"]}
    assert cluster.HF_HOME not in {m["mountPath"] for m in _container(off)["volumeMounts"]}
    assert not [v for v in _pod(off)["spec"]["volumes"] if "persistentVolumeClaim" in v]


# --- rendered only when enabled; RBAC ------------------------------------------------------------


def test_nothing_renders_when_the_runtime_is_disabled(rendered):
    for value_set in ("default", "cpu-demo", "gpu-hpa"):
        assert values_of(value_set)["trainer"]["runtime"]["enabled"] is False
        kinds = {o["kind"] for o in rendered[value_set].objects}
        assert not kinds & {*CRD_FILES, "ClusterRole", "ClusterRoleBinding"}, value_set


def test_role_grants_trainjobs_and_namespaced_runtimes(rendered):
    for value_set in ("default", *KIND_OF):
        rules = rendered[value_set].one("Role", "-pipeline")["rules"]
        by_resource = {(r["apiGroups"][0], r["resources"][0]): r["verbs"] for r in rules}
        pytorchjobs = by_resource[("kubeflow.org", "pytorchjobs")]
        assert by_resource[("trainer.kubeflow.org", "trainjobs")] == pytorchjobs
        assert by_resource[("trainer.kubeflow.org", "trainingruntimes")] == ["get"]
        # Cluster-scoped runtimes cannot be granted by a Role: that is the ClusterRole's.
        assert ("trainer.kubeflow.org", "clustertrainingruntimes") not in by_resource


def test_cluster_role_reads_cluster_runtimes_only_for_the_cluster_kind(rendered, template):
    result = rendered["trainer-runtime"]
    role = result.one("ClusterRole")
    assert role["rules"] == [
        {
            "apiGroups": ["trainer.kubeflow.org"],
            "resources": ["clustertrainingruntimes"],
            "verbs": ["get"],
        }
    ]
    binding = result.one("ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert NAMESPACE in role["metadata"]["name"]  # cluster-wide: one per release namespace
    watchers = [
        cluster.SERVICE_ACCOUNT,
        *values_of("trainer-runtime")["pipeline"]["rbac"]["kfpServiceAccounts"],
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE} for name in watchers
    ]
    # A namespaced runtime, the read switched off, or no RBAC at all: no cluster-scoped object.
    assert rendered["profile-namespace"].of_kind("ClusterRole") == []
    for off in ("trainer.runtime.clusterReadAccess=false", "pipeline.rbac.create=false"):
        result = template(*ENABLE, "--set", off)
        assert result.returncode == 0, result.stderr
        assert result.of_kind("ClusterRole") == result.of_kind("ClusterRoleBinding") == [], off


# --- values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "trainer.runtime.kind=PyTorchJob"], "trainer.runtime.kind"),
        (["--set", "trainer.runtime.shmSize=lots"], "trainer.runtime.shmSize"),
        (["--set", "trainer.runtime.name=Videollm_Torch"], "trainer.runtime.name"),
        (["--set", "trainer.runtime.enable=true"], "enable"),  # typo: unknown key
    ],
)
def test_schema_rejects_bad_runtime_values(template, args, message):
    result = template(*args)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_notes_name_the_runtime_only_when_enabled(template, tmp_path):
    """NOTES.txt is not rendered by `helm template`: render a copy of it as a ConfigMap."""
    chart = tmp_path / "videollm"
    shutil.copytree(CHART, chart)
    notes = chart / "templates" / "NOTES.txt"
    (chart / "templates" / "notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  text: {{ tpl (.Files.Get "notes.tpl") . | quote }}\n'
    )
    shutil.move(notes, chart / "notes.tpl")
    show = ("--show-only", "templates/notes.yaml")
    text = template(*show, *ENABLE, "--set", "trainer.runtime.kind=TrainingRuntime", chart=chart)
    assert text.returncode == 0, text.stderr
    body = text.objects[0]["data"]["text"]
    assert "launcher = trainjob" in body and "TrainingRuntime videollm-torch" in body
    assert "trainjob_runtime      = videollm-torch" in body
    off = template(*show, chart=chart).objects[0]["data"]["text"]
    assert "trainjob" not in off
