"""The chart's pods on a real cluster: sized (requests and limits; 7B inference on one GPU),
locked down (no root, read-only roots, a training account without token or role, MLflow behind
a login every client has), with a persistent, migrated MLflow database, a Hugging Face cache,
and pods that roll when their configuration or Secrets change."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest
from chart_objects import (
    POD_KINDS,
    REPO,
    b64,
    containers,
    env,
    pod_annotations,
    pod_spec,
    secret_data,
    values_of,
)
from kubernetes.utils import parse_quantity

from videollm import cluster

PROFILE = "profile-namespace"
LOGIN = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def _pods(result) -> list[dict]:
    return [obj for obj in result.objects if obj["kind"] in POD_KINDS]


def _mounted(container: dict, path: str) -> dict:
    """The volume mount that holds ``path`` in ``container`` (fails if none does)."""
    for mount in container.get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/")
        if path == root or path.startswith(root + "/"):
            return mount
    raise AssertionError(f"{path} is on the read-only root of {container['name']}")


def _container(obj: dict, name: str) -> dict:
    (found,) = [c for c in containers(obj) if c["name"] == name]
    return found


def _sqlite_path(uri: str) -> str:
    assert uri.startswith("sqlite:////"), uri  # an absolute path
    return uri.removeprefix("sqlite:///")


def _image_env(dockerfile: str, name: str) -> str:
    text = (REPO / "images" / dockerfile / "Dockerfile").read_text()
    return re.search(rf"\b{name}=(\S+)", text).group(1)


# --- sizing --------------------------------------------------------------------------------------


def test_every_container_has_cpu_and_memory_requests_and_limits(rendered):
    for name, result in rendered.items():
        for obj in _pods(result):
            for container in containers(obj):
                where = (name, obj["metadata"]["name"], container["name"])
                resources = container["resources"]
                for what in ("cpu", "memory"):
                    request = parse_quantity(resources["requests"][what])
                    limit = parse_quantity(resources["limits"][what])
                    assert 0 < request <= limit, (*where, what)


def test_inference_defaults_fit_a_7b_model_on_one_gpu_and_roll_without_a_spare(rendered):
    deployment = rendered["default"].one("Deployment", "-inference")
    pod = pod_spec(deployment)
    resources = pod["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1
    # A 7B checkpoint passes through host memory in bf16: 7e9 parameters x 2 bytes.
    assert parse_quantity(resources["requests"]["memory"]) >= 7e9 * 2
    assert env(pod["containers"][0])["VIDEOLLM_DEVICE"]["value"] in ("auto", "cuda")
    assert cluster.GPU_TOLERATION in pod["tolerations"]
    # The rollout never runs more pods than replicas: no second GPU needed.
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "Recreate" or strategy["rollingUpdate"]["maxSurge"] == 0
    # The documented CPU demo file: no GPU, small.
    demo = pod_spec(rendered["cpu-demo"].one("Deployment", "-inference"))
    container = demo["containers"][0]
    assert "nvidia.com/gpu" not in str(container["resources"])
    assert env(container)["VIDEOLLM_DEVICE"]["value"] == "cpu"
    assert parse_quantity(container["resources"]["limits"]["memory"]) <= parse_quantity("4Gi")
    assert "tolerations" not in demo


# --- no root, read-only roots --------------------------------------------------------------------


def test_no_pod_runs_as_root_and_every_root_filesystem_is_read_only(rendered):
    for name, result in rendered.items():
        for obj in _pods(result):
            security = pod_spec(obj)["securityContext"]
            assert security["runAsNonRoot"] is True and security["runAsUser"] > 0, name
            for container in containers(obj):
                where = (name, obj["metadata"]["name"], container["name"])
                context = container["securityContext"]
                assert context["readOnlyRootFilesystem"] is True, where
                assert context.get("runAsUser", 1) > 0 and not context.get("privileged"), where


def test_processes_write_only_to_volumes(rendered):
    """With a read-only root, every place the images' processes write is a mounted volume."""
    result = rendered["default"]
    home = "/home/videollm"
    inference = result.one("Deployment", "-inference")
    container = pod_spec(inference)["containers"][0]
    for path in ("/tmp", f"{home}/.cache/videollm", _image_env("serve", "BENTOML_HOME")):
        _mounted(container, path)
    assert _mounted(container, cluster.HF_HOME)["mountPath"] == cluster.HF_HOME
    mlflow = result.one("Deployment", "-mlflow")
    server = _container(mlflow, "mlflow")
    database = _sqlite_path(env(server)["MLFLOW_BACKEND_STORE_URI"]["value"])
    for path in ("/tmp", f"{home}/.cache", database):
        _mounted(server, path)
    minio = pod_spec(result.one("StatefulSet", "-minio"))["containers"][0]
    certs = next(a for a in minio["args"] if a.startswith("--certs-dir=")).split("=", 1)[1]
    for path in ("/data", certs):
        _mounted(minio, path)
    mc = pod_spec(result.one("Job", "-buckets"))["containers"][0]
    _mounted(mc, env(mc)["MC_CONFIG_DIR"]["value"])
    for obj in _pods(result):
        declared = {v["name"] for v in pod_spec(obj).get("volumes", [])}
        declared |= {c["metadata"]["name"] for c in obj["spec"].get("volumeClaimTemplates", [])}
        for c in containers(obj):
            assert {m["name"] for m in c.get("volumeMounts", [])} <= declared, c["name"]


# --- least privilege -----------------------------------------------------------------------------


def test_training_service_account_has_no_token_and_no_role(rendered):
    for name, result in rendered.items():
        account = result.one("ServiceAccount", "-train")
        assert account["metadata"]["name"] == cluster.TRAIN_SERVICE_ACCOUNT
        assert account["automountServiceAccountToken"] is False
        for binding in result.of_kind("RoleBinding") + result.of_kind("ClusterRoleBinding"):
            subjects = [s["name"] for s in binding["subjects"]]
            assert cluster.TRAIN_SERVICE_ACCOUNT not in subjects, (name, binding)
        # Only the watcher accounts hold the Role that creates jobs.
        (binding,) = [b for b in result.of_kind("RoleBinding") if b["roleRef"]["kind"] == "Role"]
        watchers = [
            cluster.SERVICE_ACCOUNT,
            *values_of(name)["pipeline"]["rbac"]["kfpServiceAccounts"],
        ]
        assert [s["name"] for s in binding["subjects"]] == watchers, name
    gpu = rendered["gpu-hpa"].one("ServiceAccount", "-train")
    assert gpu["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_mlflow_requires_a_login_that_every_client_has(rendered):
    result = rendered["default"]
    secret = secret_data(result.one("Secret", "-credentials"))
    mlflow = result.one("Deployment", "-mlflow")
    server = _container(mlflow, "mlflow")
    assert "--app-name=basic-auth" in server["args"]
    variables = env(server)
    # The admin MLflow creates on its first start is the login in the clients' Secret.
    admins = ("MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD")
    for admin, key in zip(admins, LOGIN, strict=True):
        ref = variables[admin]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": cluster.PLATFORM_SECRET, "key": key} and secret[key]
    flask = variables["MLFLOW_FLASK_SERVER_SECRET_KEY"]["valueFrom"]["secretKeyRef"]
    own = result.one("Secret", "-mlflow-auth")
    assert flask == {"name": own["metadata"]["name"], "key": "MLFLOW_FLASK_SERVER_SECRET_KEY"}
    assert flask["key"] in own["data"]
    # Clients: the pipeline tasks map cluster.SECRET_KEYS from the Secret; inference reads all
    # of it (envFrom); no client reads the server's Flask key.
    assert set(cluster.SECRET_KEYS) <= set(secret)
    inference = pod_spec(result.one("Deployment", "-inference"))["containers"][0]
    assert {"secretRef": {"name": cluster.PLATFORM_SECRET}} in inference["envFrom"]
    for obj in _pods(result):
        if obj is not mlflow:
            assert own["metadata"]["name"] not in str(pod_spec(obj)), obj["metadata"]["name"]


def test_mlflow_auth_can_be_switched_off(template):
    result = template("--set", "mlflow.auth.enabled=false")
    mlflow = result.one("Deployment", "-mlflow")
    assert not [a for a in _container(mlflow, "mlflow")["args"] if "app-name" in a]
    assert not set(LOGIN) & set(secret_data(result.one("Secret", "-credentials")))
    assert [s["metadata"]["name"] for s in result.of_kind("Secret")] == [cluster.PLATFORM_SECRET]
    assert [c["name"] for c in containers(mlflow)] == ["db-upgrade", "mlflow"]
    # An external MLflow's login, when given, reaches the clients the same way.
    external = template(
        "--set", "mlflow.enabled=false",
        "--set", "mlflow.external.trackingUri=https://mlflow.example.com",
        "--set", "credentials.mlflowUsername=team",
        "--set", "credentials.mlflowPassword=external-password",
    )  # fmt: skip
    data = secret_data(external.one("Secret", "-credentials"))
    assert (data["MLFLOW_TRACKING_USERNAME"], data["MLFLOW_TRACKING_PASSWORD"]) == (
        "team",
        "external-password",
    )
    assert not [s for s in external.of_kind("Secret") if "mlflow" in s["metadata"]["name"]]


def _read_auth_config(ini: Path, monkeypatch):
    """MLflow's own reader of MLFLOW_AUTH_CONFIG_PATH (its module alone: the package would build
    the whole auth app on import)."""
    spec = importlib.util.find_spec("mlflow")
    path = Path(spec.origin).parent / "server" / "auth" / "config.py"
    module_spec = importlib.util.spec_from_file_location("mlflow_auth_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(ini))
    return module.read_auth_config()


@pytest.mark.parametrize(
    "database", ["sqlite:////mlflow/basic_auth.db", "postgresql://ml:p%40ss%25w0rd@db:5432/mlflow"]
)
def test_auth_config_init_container_writes_an_ini_mlflow_reads(
    rendered, tmp_path, monkeypatch, database
):
    """Run the init container's script here; MLflow's reader must get the URI back intact (a
    URL-encoded password holds %, which configparser would otherwise expand)."""
    mlflow = rendered["default"].one("Deployment", "-mlflow")
    init = _container(mlflow, "auth-config")
    server = _container(mlflow, "mlflow")
    config_path = env(server)["MLFLOW_AUTH_CONFIG_PATH"]["value"]
    mount = _mounted(init, config_path)
    assert _mounted(server, config_path)["name"] == mount["name"]  # the same emptyDir
    variables = {name: var.get("value") for name, var in env(init).items()}
    if database.startswith("sqlite"):
        assert variables["AUTH_DATABASE_URI"] == database  # the chart's SQLite default
    variables["AUTH_DATABASE_URI"] = database
    script = init["args"][0].replace(mount["mountPath"], str(tmp_path))
    subprocess.run(
        ["/bin/sh", "-ec", script], env={"PATH": "/usr/bin:/bin", **variables}, check=True
    )
    ini = tmp_path / Path(config_path).name
    assert ini.stat().st_mode & 0o077 == 0  # readable by the server's user only
    config = _read_auth_config(ini, monkeypatch)
    assert config.database_uri == database
    assert config.default_permission == "READ"
    if database.startswith("sqlite"):
        # The user database lives on the persistent volume, next to the tracking data.
        data = _mounted(server, _sqlite_path(env(server)["MLFLOW_BACKEND_STORE_URI"]["value"]))
        assert _mounted(server, _sqlite_path(database)) == data


def test_postgres_auth_database_is_the_backend_store(rendered):
    mlflow = rendered["existing-secret"].one("Deployment", "-mlflow")
    uri = env(_container(mlflow, "auth-config"))["AUTH_DATABASE_URI"]["valueFrom"]
    assert uri == env(_container(mlflow, "mlflow"))["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]


# --- the MLflow database -------------------------------------------------------------------------


def test_mlflow_schema_is_upgraded_before_a_new_server_starts(rendered):
    # SQLite: in the server pod, before the server (one pod on the RWO volume: Recreate).
    result = rendered["default"]
    mlflow = result.one("Deployment", "-mlflow")
    server = _container(mlflow, "mlflow")
    upgrade = _container(mlflow, "db-upgrade")
    assert upgrade in pod_spec(mlflow)["initContainers"]
    uri = env(server)["MLFLOW_BACKEND_STORE_URI"]["value"]
    assert upgrade["command"] == ["mlflow", "db", "upgrade", uri]
    database = _sqlite_path(uri)
    assert _mounted(upgrade, database) == _mounted(server, database)
    assert mlflow["spec"]["strategy"] == {"type": "Recreate"}
    assert not [j for j in result.of_kind("Job") if "db-upgrade" in j["metadata"]["name"]]
    # PostgreSQL: a pre-upgrade hook Job against the server's database.
    result = rendered["existing-secret"]
    job = result.one("Job", "-mlflow-db-upgrade")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"
    container = pod_spec(job)["containers"][0]
    assert container["command"] == ["mlflow", "db", "upgrade", "$(MLFLOW_BACKEND_STORE_URI)"]
    server = _container(result.one("Deployment", "-mlflow"), "mlflow")
    uri = env(server)["MLFLOW_BACKEND_STORE_URI"]
    assert env(container)["MLFLOW_BACKEND_STORE_URI"] == uri
    assert "db-upgrade" not in [c["name"] for c in containers(result.one("Deployment", "-mlflow"))]


def test_mlflow_database_volume_is_kept_on_uninstall(rendered):
    result = rendered["default"]
    volumes = {v["name"]: v for v in pod_spec(result.one("Deployment", "-mlflow"))["volumes"]}
    claim = volumes["data"]["persistentVolumeClaim"]["claimName"]
    pvc = result.one("PersistentVolumeClaim", "-mlflow")
    assert pvc["metadata"]["name"] == claim
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


# --- rolling on change ---------------------------------------------------------------------------


def test_pods_roll_when_their_config_or_a_secret_changes(template):
    fixed = {
        "credentials.accessKey": "AKIACHECKSUMTEST",
        "credentials.secretKey": "checksum-secret-key-one",
        "credentials.mlflowPassword": "checksum-mlflow-password",
        "hfToken.value": "hf_checksum_one",
        "platform.bucket": "videollm",
    }

    def checksums(**changes: str) -> dict[tuple[str, str], str]:
        args = [a for k, v in (fixed | changes).items() for a in ("--set", f"{k}={v}")]
        result = template(*args)
        assert result.returncode == 0, result.stderr
        sums = {}
        for kind, suffix in (
            ("Deployment", "-inference"),
            ("Deployment", "-mlflow"),
            ("StatefulSet", "-minio"),
        ):
            for key, value in pod_annotations(result.one(kind, suffix)).items():
                if key.startswith("checksum/") and key != "checksum/mlflow-auth":
                    sums[suffix, key] = value  # (the Flask key is random without lookup)
        return sums

    base = checksums()
    assert base == checksums()  # the same values, the same checksums: no needless rollout
    expected = {
        "credentials.secretKey": {
            ("-inference", "checksum/credentials"),
            ("-mlflow", "checksum/credentials"),
            ("-minio", "checksum/credentials"),
        },
        "hfToken.value": {("-inference", "checksum/hf-token")},
        "platform.bucket": {
            ("-inference", "checksum/platform-config"),
            ("-mlflow", "checksum/platform-config"),
        },
    }
    for key, changed in expected.items():
        new = checksums(**{key: fixed[key] + "-changed"})
        assert {k for k in base if base[k] != new[k]} == changed, key


# --- Hugging Face cache and token ----------------------------------------------------------------


def test_hf_cache_and_token_reach_the_inference_pods(rendered, template):
    result = rendered["default"]
    pvc = result.one("PersistentVolumeClaim", "-hf-cache")
    assert pvc["metadata"]["name"] == cluster.HF_CACHE_PVC
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]  # train pods on several nodes share it
    pod = pod_spec(result.one("Deployment", "-inference"))
    container = pod["containers"][0]
    variables = env(container)
    assert variables["HF_HOME"]["value"] == cluster.HF_HOME
    volumes = {v["name"]: v for v in pod["volumes"]}
    cache = volumes[_mounted(container, cluster.HF_HOME)["name"]]
    assert cache["persistentVolumeClaim"]["claimName"] == cluster.HF_CACHE_PVC
    token = {"name": cluster.HF_TOKEN_SECRET, "key": cluster.HF_TOKEN_KEY, "optional": True}
    assert variables["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == token
    assert not [s for s in result.of_kind("Secret") if s["metadata"]["name"] == token["name"]]
    # With a token value: its Secret, and the token nowhere else.
    profile = rendered[PROFILE]
    value = values_of(PROFILE)["hfToken"]["value"]
    secret = profile.one("Secret", "-hf-token")
    assert secret["metadata"]["name"] == cluster.HF_TOKEN_SECRET
    assert secret_data(secret) == {cluster.HF_TOKEN_KEY: value}
    for obj in profile.objects:
        if obj is not secret:
            assert value not in str(obj) and b64(value) not in str(obj), obj["kind"]
    # No PVC: an emptyDir at HF_HOME; an existing token Secret: referenced, none created.
    off = template("--set", "hfCache.enabled=false", "--set", "hfToken.existingSecret=team-hf")
    pod = pod_spec(off.one("Deployment", "-inference"))
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[_mounted(pod["containers"][0], cluster.HF_HOME)["name"]]["emptyDir"] == {}
    assert not [
        p for p in off.of_kind("PersistentVolumeClaim") if "hf-cache" in p["metadata"]["name"]
    ]
    ref = env(pod["containers"][0])["HF_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "team-hf"
    assert not [s for s in off.of_kind("Secret") if s["metadata"]["name"].endswith("-hf-token")]
