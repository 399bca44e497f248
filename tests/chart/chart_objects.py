"""What the chart tests share: the value sets they render and how to read rendered objects.

conftest.py puts this folder on ``sys.path``, so the test modules import it by name.
"""

from __future__ import annotations

import base64
import fnmatch
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "videollm"
VALUES_DIR = Path(__file__).parent / "values"
RELEASE = "videollm"
NAMESPACE = "videollm"

#: Every value set the tests render: the chart's defaults, its documented CPU demo file, and the
#: files in values/ (a test checks none is forgotten; invalid-*.yaml must fail instead).
VALUE_SETS: dict[str, Path | None] = {
    "default": None,
    "cpu-demo": CHART / "values-cpu-demo.yaml",
    "external-minio": VALUES_DIR / "external-minio.yaml",
    "gpu-hpa": VALUES_DIR / "gpu-hpa.yaml",
    "existing-secret": VALUES_DIR / "existing-secret.yaml",
    "profile-namespace": VALUES_DIR / "profile-namespace.yaml",
    "trainer-runtime": VALUES_DIR / "trainer-runtime.yaml",
}

#: Kinds that hold a pod template (or are a pod), and those of them that run to completion.
POD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")
BATCH_KINDS = ("Job", "CronJob", "Pod")
#: Custom resources the chart can render: kubernetes-validate has no schema for them.
CUSTOM_GROUPS = ("gateway.networking.k8s.io", "security.istio.io", "monitoring.coreos.com")


def values_of(value_set: str) -> dict:
    """The values a value set renders with: values.yaml overlaid with its file, as Helm merges."""

    def merge(base: dict, over: dict) -> dict:
        out = dict(base)
        for key, value in over.items():
            both = isinstance(value, dict) and isinstance(base.get(key), dict)
            out[key] = merge(base[key], value) if both else value
        return out

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    path = VALUE_SETS[value_set]
    return merge(values, yaml.safe_load(path.read_text())) if path else values


def is_builtin(obj: dict) -> bool:
    """A Kubernetes API kind (core or *.k8s.io), not a CRD such as HTTPRoute."""
    group = obj["apiVersion"].rpartition("/")[0]
    if group in CUSTOM_GROUPS:
        return False
    return "." not in group or group.endswith(".k8s.io")


def pod_template(obj: dict) -> dict:
    """The pod (metadata + spec) an object runs: a Pod itself, or its (job) template."""
    if obj["kind"] == "Pod":
        return obj
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def pod_spec(obj: dict) -> dict:
    return pod_template(obj)["spec"]


def containers(obj: dict) -> list[dict]:
    """Init containers and containers of the object's pod."""
    spec = pod_spec(obj)
    return spec.get("initContainers", []) + spec["containers"]


def env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def pod_labels(obj: dict) -> dict[str, str]:
    return pod_template(obj)["metadata"].get("labels", {})


def pod_annotations(obj: dict) -> dict[str, str]:
    return pod_template(obj)["metadata"].get("annotations", {})


def selects(selector: dict[str, str], obj: dict) -> bool:
    """Whether matchLabels ``selector`` selects the pods of ``obj``."""
    return selector.items() <= pod_labels(obj).items()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret_data(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def mlflow_allowed_hosts(mlflow_deployment: dict) -> list[str]:
    """The Host-header patterns the MLflow server's --allowed-hosts accepts."""
    args = pod_spec(mlflow_deployment)["containers"][0]["args"]
    return next(a for a in args if a.startswith("--allowed-hosts=")).split("=", 1)[1].split(",")


def mlflow_allows_host(patterns: list[str], host: str) -> bool:
    """MLflow 3's Host-header check (mlflow.server.security_utils.is_allowed_host_header)."""
    return "*" in patterns or any(
        fnmatch.fnmatch(host, p) if "*" in p else host == p for p in patterns
    )
