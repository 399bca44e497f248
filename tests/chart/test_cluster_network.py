"""The chart in a Kubeflow profile namespace: Istio (no sidecar in batch pods, the
AuthorizationPolicy), NetworkPolicies, Ingress/HTTPRoute, the PDB and the `helm test` pods.

HTTPRoute and AuthorizationPolicy are CRDs kubernetes-validate has no schema for, so their shape
is checked here by hand; the builtin kinds are validated strictly in test_chart.py.
"""

from __future__ import annotations

import base64
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from chart_objects import (
    BATCH_KINDS,
    NAMESPACE,
    POD_KINDS,
    containers,
    env,
    mlflow_allowed_hosts,
    mlflow_allows_host,
    pod_annotations,
    pod_labels,
    selects,
    values_of,
)

from videollm import cluster

PROFILE = "profile-namespace"
#: The long-running services: they keep their sidecars and sit behind the network policies.
SERVICES = {"mlflow": "Deployment", "minio": "StatefulSet", "inference": "Deployment"}
OPTIONAL = ("AuthorizationPolicy", "Ingress", "HTTPRoute", "PodDisruptionBudget")
DNS_NAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _service_pods(result) -> dict[str, dict]:
    return {name: result.one(kind, f"-{name}") for name, kind in SERVICES.items()}


def _container_ports(obj: dict) -> list[dict]:
    return [port for c in containers(obj) for port in c.get("ports", [])]


# --- Istio ---------------------------------------------------------------------------------------


def test_batch_pods_run_without_an_istio_sidecar_and_services_keep_theirs(rendered, template):
    """A sidecar never exits: a Job or test pod with one never completes."""
    kinds = set()
    for name, result in rendered.items():
        for obj in result.objects:
            if obj["kind"] not in POD_KINDS:
                continue
            where = (name, obj["kind"], obj["metadata"]["name"])
            if obj["kind"] in BATCH_KINDS:
                kinds.add((obj["kind"], obj["metadata"]["name"].rpartition("videollm-")[2]))
                assert pod_annotations(obj)[cluster.ISTIO_INJECT] == "false", where
                assert pod_labels(obj)[cluster.ISTIO_INJECT] == "false", where
            else:
                assert cluster.ISTIO_INJECT not in pod_annotations(obj), where
                assert cluster.ISTIO_INJECT not in pod_labels(obj), where
    # Every kind of batch pod the chart makes was among them.
    expected = {("Job", "buckets"), ("Job", "mlflow-db-upgrade")}
    expected |= {("Pod", f"test-{name}") for name in SERVICES}
    assert expected <= kinds, kinds
    off = template("--set", "istio.disableBatchSidecars=false", values=PROFILE)
    assert off.returncode == 0, off.stderr
    assert cluster.ISTIO_INJECT not in off.stdout


def test_authorization_policy_admits_the_pipeline_accounts_and_sidecarless_pods(rendered):
    result = rendered[PROFILE]
    values = values_of(PROFILE)
    policy = result.one("AuthorizationPolicy")
    assert policy["apiVersion"] == "security.istio.io/v1"
    spec = policy["spec"]
    assert set(spec) == {"selector", "action", "rules"} and spec["action"] == "ALLOW"
    services = _service_pods(result)
    for obj in services.values():
        assert selects(spec["selector"]["matchLabels"], obj), obj["metadata"]["name"]
    # Istio matches the port the server's sidecar receives on: the container ports.
    ports = [str(p["containerPort"]) for obj in services.values() for p in _container_ports(obj)]
    accounts = [cluster.SERVICE_ACCOUNT, cluster.TRAIN_SERVICE_ACCOUNT]
    accounts += values["pipeline"]["rbac"]["kfpServiceAccounts"]
    principals = [f"cluster.local/ns/{NAMESPACE}/sa/{account}" for account in accounts]
    principals += values["istio"]["authorizationPolicy"]["extraPrincipals"]
    sources = []
    for rule in spec["rules"]:
        assert set(rule) == {"from", "to"}, rule
        assert rule["to"] == [{"operation": {"ports": ports}}]
        (peer,) = rule["from"]
        sources.append(peer["source"])
    # Mesh identities of the accounts that run pipeline tasks, training and the watcher; and
    # requests with no identity at all (KFP sets sidecar.istio.io/inject=false on every task).
    assert sources == [{"principals": principals}, {"notPrincipals": ["*"]}]
    for principal in principals:
        assert re.fullmatch(r"[a-z0-9.-]+/ns/[a-z0-9-]+/sa/[a-z0-9-]+", principal), principal


# --- NetworkPolicies -----------------------------------------------------------------------------


@pytest.mark.parametrize("value_set", ["default", PROFILE])
def test_network_policies_admit_the_namespace_and_the_named_ingress_controller(rendered, value_set):
    result = rendered[value_set]
    values = values_of(value_set)["networkPolicy"]
    policies = result.of_kind("NetworkPolicy")
    assert len(policies) == len(SERVICES)
    for name, obj in _service_pods(result).items():
        (policy,) = [p for p in policies if selects(p["spec"]["podSelector"]["matchLabels"], obj)]
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        (rule,) = policy["spec"]["ingress"]
        # This namespace's pods (a podSelector without namespaceSelector), the ingress controller
        # where a route leads (not MinIO), and what extraFrom adds; nothing else.
        expected = [{"podSelector": {}}]
        if name != "minio":
            expected.append(values["ingressController"])
        assert rule["from"] == expected + values["extraFrom"], name
        assert {p["port"] for p in rule["ports"]} == {p["name"] for p in _container_ports(obj)}


def test_optional_objects_render_only_when_enabled(rendered, template):
    default = rendered["default"]
    for kind in OPTIONAL:
        assert default.of_kind(kind) == [], kind
        assert rendered[PROFILE].of_kind(kind), kind
    # On by default: the network policies and the helm test pods.
    assert len(default.of_kind("NetworkPolicy")) == 3 and len(default.of_kind("Pod")) == 3
    off = template("--set", "networkPolicy.enabled=false", "--set", "tests.enabled=false")
    assert off.of_kind("NetworkPolicy") == [] and off.of_kind("Pod") == []


# --- exposure ------------------------------------------------------------------------------------


@pytest.mark.parametrize("component", ["mlflow", "inference"])
def test_ingress_and_http_route_reach_the_service_over_tls(rendered, component):
    result = rendered[PROFILE]
    values = values_of(PROFILE)[component]
    services = {s["metadata"]["name"]: s for s in result.of_kind("Service")}
    pods = _service_pods(result)[component]

    def service_port(name: str) -> list[dict]:
        service = services[name]
        assert selects(service["spec"]["selector"], pods)  # the Service leads to the pods
        return service["spec"]["ports"]

    ingress = result.one("Ingress", f"-{component}")["spec"]
    config = values["ingress"]
    assert ingress["ingressClassName"] == config["className"]
    (rule,) = ingress["rules"]
    assert rule["host"] == config["host"]
    assert ingress["tls"] == [
        {"hosts": [config["host"]], "secretName": config["tls"]["secretName"]}
    ]
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    backend = path["backend"]["service"]
    assert backend["port"]["name"] in [p["name"] for p in service_port(backend["name"])]

    route = result.one("HTTPRoute", f"-{component}")
    config = values["httpRoute"]
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    spec = route["spec"]
    assert set(spec) == {"parentRefs", "hostnames", "rules"}
    # TLS terminates at the Gateway's HTTPS listener the route attaches to.
    assert spec["parentRefs"] == config["parentRefs"]
    assert all(ref["name"] and ref["sectionName"] for ref in spec["parentRefs"])
    assert spec["hostnames"] == config["hostnames"]
    assert all(DNS_NAME.match(host) for host in spec["hostnames"])
    (rule,) = spec["rules"]
    assert set(rule) == {"matches", "backendRefs"}
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    (ref,) = rule["backendRefs"]
    assert set(ref) == {"name", "port"}
    assert ref["port"] in [p["port"] for p in service_port(ref["name"])]


def test_mlflow_accepts_the_host_headers_of_its_routes(rendered):
    values = values_of(PROFILE)["mlflow"]
    hosts = mlflow_allowed_hosts(rendered[PROFILE].one("Deployment", "-mlflow"))
    for host in [values["ingress"]["host"], *values["httpRoute"]["hostnames"]]:
        assert mlflow_allows_host(hosts, host), host
    default = mlflow_allowed_hosts(rendered["default"].one("Deployment", "-mlflow"))
    assert not mlflow_allows_host(default, values["ingress"]["host"])


def test_inference_pod_disruption_budget(rendered, template):
    result = rendered[PROFILE]
    pdb = result.one("PodDisruptionBudget")["spec"]
    pods = _service_pods(result)
    assert selects(pdb["selector"]["matchLabels"], pods["inference"])
    assert not selects(pdb["selector"]["matchLabels"], pods["mlflow"])
    assert pdb == {"minAvailable": 1, "selector": pdb["selector"]}
    default_on = template("--set", "inference.pdb.enabled=true").one("PodDisruptionBudget")
    assert default_on["spec"]["maxUnavailable"] == 1 and "minAvailable" not in default_on["spec"]


# --- helm test -----------------------------------------------------------------------------------


def _test_pods(result) -> dict[str, dict]:
    pods = {p["metadata"]["name"].rpartition("-test-")[2]: p for p in result.of_kind("Pod")}
    for pod in pods.values():
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        assert pod["spec"]["restartPolicy"] == "Never"
    return pods


def _script(pod: dict) -> str:
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "-ec"]
    return container["args"][0]


def test_helm_test_pods_check_mlflow_minio_and_inference(rendered):
    result = rendered["default"]
    pods = _test_pods(result)
    assert set(pods) == set(SERVICES)
    config = result.one("ConfigMap", "-platform")["data"]
    assert f"{config['MLFLOW_TRACKING_URI']}/health" in _script(pods["mlflow"])
    assert f"{config['VIDEOLLM_S3_ENDPOINT']}/minio/health/live" in _script(pods["minio"])
    service = result.one("Service", "-inference")
    readyz = f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/readyz"
    assert readyz in _script(pods["inference"])
    login = env(pods["mlflow"]["spec"]["containers"][0])
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert login[key]["valueFrom"]["secretKeyRef"] == {
            "name": cluster.PLATFORM_SECRET,
            "key": key,
        }
    external = _test_pods(rendered["external-minio"])
    assert set(external) == {"mlflow", "inference"}  # no MinIO to check


class _FakeMlflow(BaseHTTPRequestHandler):
    """/health and a search endpoint that wants ``user:secret-password`` unless ``open``."""

    open = False

    def do_GET(self) -> None:
        login = "Basic " + base64.b64encode(b"user:secret-password").decode()
        authorized = self.open or self.headers.get("Authorization") == login
        status = 200 if self.path == "/health" or authorized else 401
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize(
    ("open_server", "password", "passes"),
    [(False, "secret-password", True), (True, "secret-password", False), (False, "wrong", False)],
)
def test_mlflow_test_script_fails_unless_auth_is_on_and_the_login_works(
    rendered, open_server, password, passes
):
    """The `helm test` MLflow script, run here against a stand-in server."""
    handler = type("Handler", (_FakeMlflow,), {"open": open_server})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = rendered["default"]
        uri = result.one("ConfigMap", "-platform")["data"]["MLFLOW_TRACKING_URI"]
        script = _script(_test_pods(result)["mlflow"]).replace(
            uri, f"http://127.0.0.1:{server.server_port}"
        )
        variables = {"MLFLOW_TRACKING_USERNAME": "user", "MLFLOW_TRACKING_PASSWORD": password}
        proc = subprocess.run(
            ["/bin/sh", "-ec", script],
            env={"PATH": "/usr/bin:/bin", **variables},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert (proc.returncode == 0) is passes, proc.stdout + proc.stderr
    if open_server:
        assert "not 401" in proc.stdout
