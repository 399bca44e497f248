"""The Helm chart (charts/videollm): lints, renders valid Kubernetes objects for every value set,
rejects bad values, keeps credentials out of plain text, and agrees with the code it serves
(RBAC rules, image names, platform ConfigMap/Secret keys, the service's probes and env)."""

from __future__ import annotations

import re
import shutil
import subprocess
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml
from chart_objects import (
    CHART,
    NAMESPACE,
    POD_KINDS,
    REPO,
    VALUE_SETS,
    VALUES_DIR,
    b64,
    containers,
    env,
    is_builtin,
    mlflow_allowed_hosts,
    mlflow_allows_host,
    pod_spec,
    secret_data,
)

from videollm import cluster
from videollm.images import TAG, image
from videollm.launcher.rbac import RBAC_RULES

#: Validated against the oldest Kubernetes the chart supports and the newest schema known.
K8S_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
#: Limits of videollm.serve.serve_config.ServeConfig the chart sets.
LIMIT_VARS = (
    "VIDEOLLM_MAX_UPLOAD_MB",
    "VIDEOLLM_MAX_DURATION_S",
    "VIDEOLLM_MAX_NEW_TOKENS",
    "VIDEOLLM_MAX_BATCH_SIZE",
    "VIDEOLLM_MAX_BATCH_TOKENS",
)
LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)
#: The chart's pods that use the platform endpoints and credentials (envFrom); MinIO reads only
#: its root login, the db-upgrade Job only its database URI, the test pods only what they check.
CLIENTS = (("Deployment", "-mlflow"), ("Deployment", "-inference"), ("Job", "-buckets"))
SECRET_NAME = re.compile(r"(^|_)(SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIALS?)(_|$)", re.I)


# --- lint, schema, Kubernetes validation ---------------------------------------------------


def test_every_values_file_is_a_rendered_value_set():
    """A values file added to tests/chart/values/ or the chart (values-*.yaml) is tested too."""
    files = {p for p in VALUES_DIR.glob("*.yaml") if not p.name.startswith("invalid-")}
    files |= set(CHART.glob("values-*.yaml"))
    assert files == {p for p in VALUE_SETS.values() if p is not None}


def test_chart_metadata_and_default_images_come_from_videollm_images():
    """values.yaml's images and Chart.yaml's appVersion equal videollm.images (one source)."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert chart["apiVersion"] == "v2" and "dependencies" not in chart  # nothing to fetch
    assert chart["appVersion"] == TAG
    for kind in ("pipeline", "serve"):
        repo, _, tag = image(kind).rpartition(":")
        assert values["images"][kind]["repository"] == repo
        assert values["images"][kind]["tag"] == tag


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_helm_lint_strict(helm, value_set):
    cmd = [str(helm), "lint", "--strict", str(CHART), "--namespace", NAMESPACE]
    if VALUE_SETS[value_set] is not None:
        cmd += ["-f", str(VALUE_SETS[value_set])]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_every_rendered_object_is_valid_kubernetes(rendered, value_set):
    objects = rendered[value_set].objects
    builtin = [o for o in objects if is_builtin(o)]
    assert len(builtin) >= 10, [o["kind"] for o in objects]
    errors = []
    for obj in builtin:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                where = ".".join(str(p) for p in err.path)
                name = f"{obj['kind']}/{obj['metadata']['name']}"
                errors.append(f"{name} @{version} {where}: {err.message}")
    assert not errors, "\n".join(errors)
    # Custom resources (kubernetes-validate has no schema for them) are checked by hand.
    # (test_cluster.py checks the HTTPRoutes and the AuthorizationPolicy, test_trainer_runtime.py
    # validates the training runtimes against Kubeflow Trainer's CRDs.)
    others = {o["kind"] for o in objects if not is_builtin(o)}
    custom = {"ServiceMonitor", "HTTPRoute", "AuthorizationPolicy"}
    assert others <= custom | {"ClusterTrainingRuntime", "TrainingRuntime"}, others


def test_kubernetes_validation_catches_a_broken_object(rendered):
    """The validation above is strict: an unknown field or a wrong type fails it."""
    deployment = rendered["default"].one("Deployment", "-inference")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["path"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_wrong_value_type_fails_against_the_schema(helm, template):
    bad = VALUES_DIR / "invalid-replicas.yaml"
    assert yaml.safe_load(bad.read_text())["inference"]["replicas"] == "two"
    result = template(values=bad)
    assert result.returncode != 0
    assert "inference.replicas" in result.stderr and "integer" in result.stderr, result.stderr
    lint = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART), "-f", str(bad)], capture_output=True, text=True
    )
    assert lint.returncode != 0 and "inference.replicas" in lint.stdout + lint.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "inference.gpu=-1"], "inference.gpu"),
        (["--set", "inference.device=tpu"], "inference.device"),
        (["--set", "minio.image.tag=latest"], "minio.image.tag"),
        (["--set", "minio.external.endpoint=s3.example.com"], "minio.external.endpoint"),
        (["--set", "inference.autoscaling.enabled=yes"], "inference.autoscaling.enabled"),
        (["--set", "inference.replicsa=2"], "replicsa"),  # typo: unknown key
        (["--set", "credentials.mlflowPassword=short"], "credentials.mlflowPassword"),
        (["--set", "mlflow.auth.defaultPermission=ALL"], "mlflow.auth.defaultPermission"),
        (["--set", "mlflow.ingress.enabled=true"], "mlflow.ingress.host is required"),
        (["--set", "inference.httpRoute.enabled=true"], "inference.httpRoute.parentRefs"),
        (["--set", "tests.resources.requests.memory=null"], "memory"),
    ],
)
def test_schema_rejects_bad_values(template, args, message):
    result = template(*args)
    assert result.returncode != 0 and message in result.stderr, result.stderr


# --- credentials ------------------------------------------------------------------------------


def test_no_credential_appears_outside_secrets(rendered):
    """Distinctive keys, token and MLflow login (external-minio.yaml) are in the Secret and
    nowhere else."""
    values = yaml.safe_load(VALUE_SETS["external-minio"].read_text())["credentials"]
    keys = ("accessKey", "secretKey", "apiToken", "mlflowUsername", "mlflowPassword")
    creds = [values[key] for key in keys]
    result = rendered["external-minio"]
    secret = result.one("Secret", "-credentials")
    assert secret_data(secret) == {
        "AWS_ACCESS_KEY_ID": creds[0],
        "AWS_SECRET_ACCESS_KEY": creds[1],
        "VIDEOLLM_API_TOKEN": creds[2],
        "MLFLOW_TRACKING_USERNAME": creds[3],
        "MLFLOW_TRACKING_PASSWORD": creds[4],
    }
    for obj in result.objects:
        if obj["kind"] == "Secret":
            continue
        text = yaml.safe_dump(obj)
        for cred in creds:
            assert cred not in text, f"{cred!r} in plain text in {obj['kind']}"
            assert b64(cred) not in text, f"{cred!r} base64-encoded in {obj['kind']}"


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_secret_looking_env_vars_come_from_secrets(rendered, value_set):
    for obj in rendered[value_set].objects:
        if obj["kind"] == "ConfigMap":
            assert not [k for k in obj["data"] if SECRET_NAME.search(k)], obj["data"]
        if obj["kind"] not in POD_KINDS:
            continue
        for container in containers(obj):
            for name, var in env(container).items():
                if SECRET_NAME.search(name):
                    assert "valueFrom" in var or var.get("value") == "", (obj["kind"], var)


def test_generated_credentials_are_random_not_a_fixed_default(rendered, template):
    again = template()
    first = secret_data(rendered["default"].one("Secret", "-credentials"))
    second = secret_data(again.one("Secret", "-credentials"))
    assert set(first) == set(cluster.SECRET_KEYS)  # no API token unless auth is on
    assert len(first["AWS_ACCESS_KEY_ID"]) >= 20 and len(first["AWS_SECRET_ACCESS_KEY"]) >= 40
    # MLflow refuses an admin password under 12 characters; the user name is a plain value.
    assert len(first["MLFLOW_TRACKING_PASSWORD"]) >= 12
    assert first.pop("MLFLOW_TRACKING_USERNAME") == second.pop("MLFLOW_TRACKING_USERNAME")
    # The MLflow server's Flask key (its own Secret) is generated the same way.
    first |= secret_data(rendered["default"].one("Secret", "-mlflow-auth"))
    second |= secret_data(again.one("Secret", "-mlflow-auth"))
    assert "MLFLOW_FLASK_SERVER_SECRET_KEY" in first
    for key in first:
        assert first[key].isalnum() and first[key] != second[key], key
    for name in ("platform-secret.yaml", "mlflow-auth-secret.yaml"):
        text = (CHART / "templates" / name).read_text()
        assert "lookup" in text, name  # read back on upgrade, so they stay stable


def test_external_store_requires_its_credentials(template):
    result = template(
        "--set", "minio.enabled=false", "--set", "minio.external.endpoint=http://s3:9000"
    )
    assert result.returncode != 0 and "credentials.accessKey" in result.stderr, result.stderr
    keys = ["--set", "credentials.accessKey=a", "--set", "credentials.secretKey=b"]
    result = template("--set", "minio.enabled=false", *keys)
    assert result.returncode != 0 and "minio.external.endpoint" in result.stderr, result.stderr


def test_existing_secret_is_used_everywhere_and_none_is_created(rendered):
    result = rendered["existing-secret"]
    values = yaml.safe_load(VALUE_SETS["existing-secret"].read_text())
    existing = values["credentials"]["existingSecret"]
    db = values["mlflow"]["backendStore"]
    # No credentials Secret: only the MLflow server's own Flask key, which no client reads.
    own = result.one("Secret", "-mlflow-auth")["metadata"]["name"]
    assert [s["metadata"]["name"] for s in result.of_kind("Secret")] == [own]
    refs = []
    for obj in result.objects:
        if obj["kind"] not in POD_KINDS:
            continue
        for container in containers(obj):
            env_from = container.get("envFrom", [])
            refs += [s["secretRef"]["name"] for s in env_from if "secretRef" in s]
            refs += [
                (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
                for e in container.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            ]
    names = {r if isinstance(r, str) else r[0] for r in refs}
    # (The Hub token Secret is an optional reference: there is none in this set.)
    assert names == {existing, db["existingSecret"], own, cluster.HF_TOKEN_SECRET}
    assert (db["existingSecret"], db["existingSecretKey"]) in refs
    assert (existing, "VIDEOLLM_API_TOKEN") in refs
    assert (existing, "MLFLOW_TRACKING_PASSWORD") in refs
    mlflow = result.one("Deployment", "-mlflow")
    assert mlflow["spec"]["replicas"] == 2 and "strategy" not in mlflow["spec"]
    args = pod_spec(mlflow)["containers"][0]["args"]
    assert "--backend-store-uri=$(MLFLOW_BACKEND_STORE_URI)" in args
    claims = [p["metadata"]["name"] for p in result.of_kind("PersistentVolumeClaim")]
    assert not [name for name in claims if "mlflow" in name]


# --- the platform ConfigMap, Secret and ServiceAccount the pipelines name --------------------


def test_platform_configmap_keys_and_default_names_match_the_pipelines(rendered):
    result = rendered["default"]
    config = result.one("ConfigMap", "-platform")
    assert config["metadata"]["name"] == cluster.PLATFORM_CONFIG
    assert result.one("Secret", "-credentials")["metadata"]["name"] == cluster.PLATFORM_SECRET
    assert result.one("ServiceAccount", "-pipeline")["metadata"]["name"] == cluster.SERVICE_ACCOUNT
    assert result.one("ServiceAccount", "-train")["metadata"]["name"] == (
        cluster.TRAIN_SERVICE_ACCOUNT
    )
    assert set(cluster.CONFIG_KEYS) - {"AWS_DEFAULT_REGION"} <= set(config["data"])
    # An external S3's region is set only when given, and then reaches the tasks too.
    external = rendered["external-minio"].one("ConfigMap", "-platform")["data"]
    assert external["AWS_DEFAULT_REGION"] == "eu-west-1" and set(cluster.CONFIG_KEYS) <= set(
        external
    )
    assert config["data"] == {
        "VIDEOLLM_S3_ENDPOINT": "http://videollm-minio:9000",
        "MLFLOW_S3_ENDPOINT_URL": "http://videollm-minio:9000",
        "VIDEOLLM_S3_SECURE": "false",
        "MLFLOW_TRACKING_URI": "http://videollm-mlflow:5000",
        "VIDEOLLM_BUCKET": "videollm",
    }
    # The endpoints name Services the chart creates, on their ports.
    services = {s["metadata"]["name"]: s for s in result.of_kind("Service")}
    for key in ("VIDEOLLM_S3_ENDPOINT", "MLFLOW_TRACKING_URI"):
        url = urlparse(config["data"][key])
        assert url.port in [p["port"] for p in services[url.hostname]["spec"]["ports"]]


def test_every_component_reads_the_platform_configmap_and_secret(rendered):
    result = rendered["default"]
    clients = [result.one(kind, suffix) for kind, suffix in CLIENTS]
    for obj in clients:
        env_from = pod_spec(obj)["containers"][0]["envFrom"]
        assert {"configMapRef": {"name": cluster.PLATFORM_CONFIG}} in env_from, obj["kind"]
        assert {"secretRef": {"name": cluster.PLATFORM_SECRET}} in env_from, obj["kind"]
    minio = env(pod_spec(result.one("StatefulSet", "-minio"))["containers"][0])
    assert minio["MINIO_ROOT_USER"]["valueFrom"]["secretKeyRef"] == {
        "name": cluster.PLATFORM_SECRET,
        "key": "AWS_ACCESS_KEY_ID",
    }
    password = minio["MINIO_ROOT_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert password == {"name": cluster.PLATFORM_SECRET, "key": "AWS_SECRET_ACCESS_KEY"}


def test_role_rules_equal_the_launcher_rbac_rules(rendered):
    for value_set in VALUE_SETS:
        role = rendered[value_set].one("Role", "-pipeline")
        rules = []
        for rule in role["rules"]:
            assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no wildcards/extras
            rules += [
                (group, resource, tuple(rule["verbs"]))
                for group in rule["apiGroups"]
                for resource in rule["resources"]
            ]
        assert rules == list(RBAC_RULES), value_set
        assert "*" not in str(role["rules"])


def test_pipeline_service_account_is_bound_to_the_role(rendered):
    result = rendered["gpu-hpa"]
    account = result.one("ServiceAccount", "-pipeline")
    assert account["imagePullSecrets"] == [{"name": "registry-credentials"}]
    role = result.one("Role", "-pipeline")
    bindings = {b["roleRef"]["name"]: b for b in result.of_kind("RoleBinding")}
    name = account["metadata"]["name"]
    subject = {"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}
    assert bindings[role["metadata"]["name"]]["roleRef"]["kind"] == "Role"
    # The train task launches the job as the account KFP runs the pipeline as, so those
    # accounts hold the Role too; the job's own pods (the chart's account) never call the API.
    runners = [
        {"kind": "ServiceAccount", "name": kfp, "namespace": NAMESPACE}
        for kfp in ("pipeline-runner", "default-editor")
    ]
    assert bindings[role["metadata"]["name"]]["subjects"] == [subject, *runners]
    extra = bindings["kubeflow-pipelines-edit"]  # pipeline.extraRoleRefs
    assert extra["roleRef"]["kind"] == "ClusterRole" and extra["subjects"] == [subject]


# --- MinIO -------------------------------------------------------------------------------------


def test_minio_statefulset_service_and_bucket_job(rendered):
    result = rendered["default"]
    sts = result.one("StatefulSet", "-minio")
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "100Gi"
    mounts = pod_spec(sts)["containers"][0]["volumeMounts"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in mounts
    assert sts["spec"]["serviceName"] in {s["metadata"]["name"] for s in result.of_kind("Service")}
    job = result.one("Job", "-buckets")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"post-install", "post-upgrade"}
    container = pod_spec(job)["containers"][0]
    assert env(container)["BUCKETS"]["value"].split() == ["videollm", "mlflow"]
    assert "mc mb --ignore-existing" in container["args"][0]


def test_external_minio_renders_no_minio_and_points_the_configmap_at_it(rendered):
    result = rendered["external-minio"]
    endpoint = yaml.safe_load(VALUE_SETS["external-minio"].read_text())["minio"]["external"]
    assert result.of_kind("StatefulSet") == []
    assert not [o for o in result.objects if "minio" in o["metadata"]["name"]]
    data = result.one("ConfigMap", "-platform")["data"]
    assert data["VIDEOLLM_S3_ENDPOINT"] == data["MLFLOW_S3_ENDPOINT_URL"] == endpoint["endpoint"]
    assert data["VIDEOLLM_S3_SECURE"] == "true"
    assert data["VIDEOLLM_BUCKET"] == "team-videollm" and data["AWS_DEFAULT_REGION"] == "eu-west-1"
    job = pod_spec(result.one("Job", "-buckets"))["containers"][0]
    assert env(job)["BUCKETS"]["value"].split() == ["team-videollm", "team-mlflow"]


# --- MLflow ------------------------------------------------------------------------------------


def test_mlflow_proxies_artifacts_to_s3_and_accepts_its_clients_host(rendered):
    result = rendered["default"]
    deployment = result.one("Deployment", "-mlflow")
    container = pod_spec(deployment)["containers"][0]
    assert container["image"] == image("pipeline")
    args = container["args"]
    assert "--artifacts-destination=s3://mlflow/" in args and "--serve-artifacts" in args
    assert env(container)["MLFLOW_BACKEND_STORE_URI"]["value"] == "sqlite:////mlflow/mlflow.db"
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pvc = result.one("PersistentVolumeClaim", "-mlflow")
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    hosts = mlflow_allowed_hosts(deployment)
    tracking = urlparse(result.one("ConfigMap", "-platform")["data"]["MLFLOW_TRACKING_URI"])
    assert mlflow_allows_host(hosts, tracking.netloc)  # what in-cluster clients send
    assert mlflow_allows_host(hosts, f"{tracking.hostname}.{NAMESPACE}.svc.cluster.local:5000")
    assert mlflow_allows_host(hosts, "localhost:5000")  # kubectl port-forward
    assert not mlflow_allows_host(hosts, "evil.example.com")
    assert pod_spec(deployment)["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/health"


# --- the inference service ---------------------------------------------------------------------


def test_inference_deployment_probes_env_and_metrics(rendered):
    result = rendered["default"]
    deployment = result.one("Deployment", "-inference")
    pod = pod_spec(deployment)
    container = pod["containers"][0]
    assert container["image"] == image("serve")
    assert container["args"][:3] == ["bentoml", "serve", "videollm.serve.service:VideoLLMService"]
    assert container["ports"] == [{"name": "http", "containerPort": 3000}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    # The model loads in the background: liveness waits for the server, not the model.
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    variables = env(container)
    assert variables["VIDEOLLM_MODEL_URI"]["value"] == "models:/videollm@champion"
    assert "VIDEOLLM_CHECKPOINT" not in variables
    assert variables["VIDEOLLM_DEVICE"]["value"] == "auto"
    for name in LIMIT_VARS:
        assert variables[name]["value"].isdigit(), name
    auth_off = {"name": "VIDEOLLM_API_TOKEN", "value": ""}
    assert variables["VIDEOLLM_API_TOKEN"] == auth_off
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "3000"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert deployment["spec"]["replicas"] == 1
    assert result.of_kind("HorizontalPodAutoscaler") == []
    assert result.of_kind("ServiceMonitor") == []
    service = result.one("Service", "-inference")
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_gpu_inference_with_hpa_and_service_monitor(rendered):
    result = rendered["gpu-hpa"]
    deployment = result.one("Deployment", "-inference")
    pod = pod_spec(deployment)
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert container["resources"]["limits"]["memory"] == "64Gi"
    assert container["image"] == "registry.example.com/ml/videollm-serve:0.1.0"
    assert env(container)["VIDEOLLM_DEVICE"]["value"] == "cuda"
    assert env(container)["VIDEOLLM_BATCH_LATENCY_MS"]["value"] == "20"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert "replicas" not in deployment["spec"]  # the HPA owns it
    hpa = result.one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["spec"]["metrics"]}
    assert targets["cpu"]["averageUtilization"] == 60
    assert targets["memory"]["averageUtilization"] == 80
    # The ServiceMonitor (a CRD kubernetes-validate cannot check) selects the inference
    # Service and scrapes its named port.
    monitor = result.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = result.one("Service", "-inference")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
    # The service selects the pods.
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_every_videollm_env_var_the_chart_sets_is_read_by_the_service(rendered):
    """No setting the service would silently ignore (a renamed variable fails here)."""
    source = "".join(p.read_text() for p in (REPO / "videollm" / "serve").glob("*.py"))
    source += (REPO / "videollm" / "storage" / "settings.py").read_text()
    source += (REPO / "videollm" / "kfp" / "work_dirs.py").read_text()  # the pipeline's bucket
    names = set()
    for result in rendered.values():
        container = pod_spec(result.one("Deployment", "-inference"))["containers"][0]
        names |= {n for n in env(container) if n.startswith("VIDEOLLM_")}
        names |= {k for k in result.one("ConfigMap", "-platform")["data"] if "VIDEOLLM_" in k}
    assert {"VIDEOLLM_MODEL_URI", "VIDEOLLM_CHECKPOINT", "VIDEOLLM_API_TOKEN"} <= names
    assert {n for n in names if f'"{n}"' not in source} == set()


def test_inference_auth_token_and_checkpoint(rendered):
    deployment = rendered["external-minio"].one("Deployment", "-inference")
    container = pod_spec(deployment)["containers"][0]
    variables = env(container)
    assert variables["VIDEOLLM_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "videollm-credentials",
        "key": "VIDEOLLM_API_TOKEN",
    }
    assert variables["VIDEOLLM_CHECKPOINT"]["value"] == "s3://team-videollm/checkpoints/run-42"
    assert "VIDEOLLM_MODEL_URI" not in variables


# --- conventions every object follows ----------------------------------------------------------


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_labels_security_and_pinned_images(rendered, value_set):
    for obj in rendered[value_set].objects:
        labels = obj["metadata"]["labels"]
        for key in LABELS:
            assert labels.get(key), (obj["kind"], obj["metadata"]["name"], key)
        if obj["kind"] not in POD_KINDS:
            continue
        pod = pod_spec(obj)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        for container in containers(obj):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            ref = container["image"]
            assert re.fullmatch(r"[\w.:/-]+:[\w.-]+|[\w.:/-]+@sha256:[0-9a-f]{64}", ref), ref
            assert not ref.endswith(":latest"), ref
            assert container["resources"].get("requests"), (obj["kind"], container["name"])


# --- NOTES.txt -----------------------------------------------------------------------------------


def test_notes_explain_mlflow_the_endpoint_and_the_pipelines(template, tmp_path):
    """NOTES.txt is not rendered by `helm template`: render a copy of it as a ConfigMap."""
    chart = tmp_path / "videollm"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "_notes.tpl").write_text(
        '{{- define "test.notes" -}}' + notes + "{{- end -}}"
    )
    (chart / "templates" / "notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  text: {{ include "test.notes" . | quote }}\n'
    )
    result = template("--show-only", "templates/notes.yaml", chart=chart)
    assert result.returncode == 0, result.stderr
    text = result.objects[0]["data"]["text"]
    assert "port-forward svc/videollm-mlflow 5000:5000" in text
    assert "port-forward svc/videollm-inference 3000:3000" in text
    assert re.search(r"curl .*-F video=@clip\.mp4 -F question=.* localhost:3000/chat", text)
    for compiled in ("pipelines/finetune.yaml", "pipelines/extract_only.yaml"):
        assert compiled in text and (REPO / compiled).is_file(), compiled
    for param, name in (
        ("train_service_account", cluster.TRAIN_SERVICE_ACCOUNT),
        ("platform_config", cluster.PLATFORM_CONFIG),
        ("platform_secret", cluster.PLATFORM_SECRET),
        ("hf_cache_pvc", cluster.HF_CACHE_PVC),
        ("hf_token_secret", cluster.HF_TOKEN_SECRET),
    ):
        assert re.search(rf"^\s+{param} += {re.escape(name)}$", text, re.M), (param, text)
    # With auth on, the example sends the token (read from the Secret, not printed).
    token = ["--set", "inference.auth.enabled=true", "--set", "credentials.apiToken=tok-hidden"]
    auth = template("--show-only", "templates/notes.yaml", *token, chart=chart)
    text = auth.objects[0]["data"]["text"]
    assert "Authorization: Bearer $TOKEN" in text and "tok-hidden" not in text
