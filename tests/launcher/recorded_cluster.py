"""A Kubernetes API that replays recorded responses, for the cluster launchers' tests.

There is no Kubernetes API server here, so the two low-level API objects (``CustomObjectsApi``,
``CoreV1Api``) are replaced by fakes that replay the bodies under ``recordings/`` (see its
README) one poll at a time. For the PyTorchJob launcher they sit under a real
``TrainingClient``, so everything above them — ``create_job``, ``get_job``, ``update_job``, the
condition helpers, ``get_job_logs``, ``delete_job`` and the model deserialization — is the real
kubeflow-training code; the TrainJob launcher calls them directly. Every call is recorded with
the RBAC rule it needs, and checked against the launchers' rules.
"""

from __future__ import annotations

import copy
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeflow.training import TrainingClient
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from videollm.cluster import HF_CACHE_PVC, HF_TOKEN_SECRET, ISTIO_INJECT, RUN_LABEL
from videollm.launcher.base import TrainJobSpec
from videollm.launcher.pytorchjob import PyTorchJobLauncher
from videollm.launcher.rbac import BEST_EFFORT_RULES, RBAC_RULES
from videollm.launcher.trainjob import TrainJobLauncher

RECORDINGS = Path(__file__).parent / "recordings"
NAME, NAMESPACE = "videollm-train-demo", "ml-team"
#: The KFP run the recordings belong to, and the watcher pod (a task of its Argo Workflow).
RUN_ID = "3f2a8c1e-5b7d-4e9a-a1c2-9d8e7f6a5b4c"
WATCHER = "finetune-x7k2p-system-container-impl-2738472934"
WORKFLOW, WORKFLOW_UID = "finetune-x7k2p", "5e3b1f7a-2c9d-4a86-8f14-b7e0d2c6a391"


def demo_spec() -> TrainJobSpec:
    """The run the recordings belong to (2 nodes × 1 GPU)."""
    return TrainJobSpec(
        name=NAME,
        namespace=NAMESPACE,
        image="registry.example.com/videollm:0.1.0",
        args=["train", "--config", "demo", "--records", "s3://videollm/records",
              "--features", "s3://videollm/features", "--out", "s3://videollm/ckpt/demo"],
        num_workers=2,
        gpus_per_worker=1,
        cpu="8",
        memory="96Gi",
        service_account="videollm-train",
        env_from_secrets=["videollm-platform"],
        labels={RUN_LABEL: RUN_ID},
        pod_annotations={ISTIO_INJECT: "false"},
        active_deadline_s=48 * 3600,
        ttl_after_finished_s=24 * 3600,
        hf_cache_pvc=HF_CACHE_PVC,
        hf_token_secret=HF_TOKEN_SECRET,
    )  # fmt: skip


def read(name: str) -> str:
    return (RECORDINGS / name).read_text()


def recorded(name: str) -> dict[str, Any]:
    """A recorded JSON body, to change before replaying it."""
    return json.loads(read(name))


@dataclass
class Step:
    """What the cluster shows during one poll.

    Attributes:
        job: Recorded PyTorchJob body (file name, or the body itself), or an HTTP status the
            ``get`` fails with.
        pods: Recorded master PodList (``None``: no pods yet).
        log: Recorded master log, or an HTTP status reading it fails with.
    """

    job: str | dict[str, Any] | int
    pods: str | None = None
    log: str | int | None = None


@dataclass
class Call:
    method: str
    rule: tuple[str, str, str]  # (apiGroup, resource, verb) it needs
    kwargs: dict[str, Any]


@dataclass
class Cluster:
    """Replays ``steps``; each job ``get`` moves to the next one (the last one repeats).

    Attributes:
        create_errors: What successive ``create`` calls fail with (``None``: created); once
            used up, ``create`` succeeds.
        pod: The watcher pod's body (file name or body) or the status reading it fails with.
        kind: ``pytorchjob`` or ``trainjob``: which pods and containers hold the master's log.
        runtimes: What reading a Trainer runtime returns by resource (``trainingruntimes``,
            ``clustertrainingruntimes``): a body (file name or body) or an HTTP status.
    """

    steps: list[Step]
    create_errors: list[ApiException | None] = field(default_factory=list)
    pod: str | dict[str, Any] | int = "watcher_pod.json"
    kind: str = "pytorchjob"
    runtimes: dict[str, str | dict[str, Any] | int] = field(
        default_factory=lambda: {
            "trainingruntimes": 404,
            "clustertrainingruntimes": "trainjob_runtime.json",
        }
    )
    calls: list[Call] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    patches: list[dict[str, Any]] = field(default_factory=list)
    index: int = -1

    @property
    def step(self) -> Step:
        return self.steps[max(self.index, 0)]

    def record(self, real: Any, args: tuple[Any, ...], kwargs: dict[str, Any], rule: Any) -> Any:
        # Calls must fit the real method's signature, or the fake would hide a broken call.
        bound = inspect.signature(real).bind(None, *args, **kwargs).arguments
        self.calls.append(Call(real.__name__, rule(bound), bound))
        return bound

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]


class _Async:
    """What ``async_req=True`` returns (an ``ApplyResult``): the value, or the error, on get()."""

    def __init__(self, value: Any = None, error: Exception | None = None) -> None:
        self._value, self._error = value, error

    def get(self, timeout: float | None = None) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


def api_exception(status: int, body: str | None = None) -> ApiException:
    exc = ApiException(status=status, reason={403: "Forbidden", 404: "Not Found",
                                              409: "Conflict"}.get(status, "Error"))  # fmt: skip
    exc.body = body
    return exc


def _body(value: str | dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(value) if isinstance(value, dict) else json.loads(read(value))


class _Refuses:
    """Any other API method is recorded (so the RBAC check fails) and refused."""

    cluster: Cluster

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def refuse(*args: Any, **kwargs: Any) -> Any:
            self.cluster.calls.append(Call(name, ("?", "?", name), kwargs))
            raise AssertionError(f"unexpected Kubernetes API call {name}")

        return refuse


class FakeCustomObjectsApi(_Refuses):
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def create_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        real = k8s.CustomObjectsApi.create_namespaced_custom_object
        call = self.cluster.record(real, args, kwargs, _custom("create"))
        if self.cluster.create_errors:
            error = self.cluster.create_errors.pop(0)
            if error is not None:
                raise error
        body = k8s.ApiClient().sanitize_for_serialization(call["body"])
        self.cluster.created.append(body)
        return body

    def get_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        real = k8s.CustomObjectsApi.get_namespaced_custom_object
        call = self.cluster.record(real, args, kwargs, _custom("get"))
        if call["plural"] == "trainingruntimes":
            assert call["namespace"] == NAMESPACE
            return self._runtime(call)
        assert (call["namespace"], call["name"]) == (NAMESPACE, NAME)
        self.cluster.index = min(self.cluster.index + 1, len(self.cluster.steps) - 1)
        job = self.cluster.step.job
        result = _Async(error=api_exception(job)) if isinstance(job, int) else _Async(_body(job))
        return result if call.get("kwargs", {}).get("async_req") else result.get()

    def get_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        real = k8s.CustomObjectsApi.get_cluster_custom_object
        call = self.cluster.record(real, args, kwargs, _custom("get"))
        assert call["plural"] == "clustertrainingruntimes"
        return self._runtime(call)

    def _runtime(self, call: dict[str, Any]) -> Any:
        assert call["group"] == "trainer.kubeflow.org" and call["version"] == "v1alpha1"
        found = self.cluster.runtimes[call["plural"]]
        if isinstance(found, int):
            raise api_exception(found)
        body = _body(found)
        assert body["metadata"]["name"] == call["name"]
        return body

    def patch_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        real = k8s.CustomObjectsApi.patch_namespaced_custom_object
        call = self.cluster.record(real, args, kwargs, _custom("patch"))
        assert (call["namespace"], call["name"]) == (NAMESPACE, NAME)
        self.cluster.patches.append(k8s.ApiClient().sanitize_for_serialization(call["body"]))
        return call["body"]

    def delete_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        real = k8s.CustomObjectsApi.delete_namespaced_custom_object
        call = self.cluster.record(real, args, kwargs, _custom("delete"))
        assert (call["namespace"], call["name"]) == (NAMESPACE, NAME)
        return {"kind": "Status", "apiVersion": "v1", "status": "Success"}


class FakeCoreV1Api(_Refuses):
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def read_namespaced_pod(self, *args: Any, **kwargs: Any) -> Any:
        real = k8s.CoreV1Api.read_namespaced_pod
        call = self.cluster.record(real, args, kwargs, lambda _: ("", "pods", "get"))
        assert (call["namespace"], call["name"]) == (NAMESPACE, WATCHER)
        if isinstance(self.cluster.pod, int):
            raise api_exception(self.cluster.pod)
        body = json.dumps(_body(self.cluster.pod))
        return k8s.ApiClient().deserialize(_Response(body), "V1Pod")

    def list_namespaced_pod(self, *args: Any, **kwargs: Any) -> Any:
        real = k8s.CoreV1Api.list_namespaced_pod
        call = self.cluster.record(real, args, kwargs, lambda _: ("", "pods", "list"))
        assert call["namespace"] == NAMESPACE
        selector = call["kwargs"]["label_selector"].split(",")
        if self.cluster.kind == "trainjob":
            # Node 0: pod 0 of job 0 of the node replicated job of the TrainJob's JobSet.
            assert f"jobset.sigs.k8s.io/jobset-name={NAME}" in selector
            assert "jobset.sigs.k8s.io/replicatedjob-name=node" in selector
            assert "jobset.sigs.k8s.io/job-index=0" in selector
            assert "batch.kubernetes.io/job-completion-index=0" in selector
        else:
            assert f"training.kubeflow.org/job-name={NAME}" in selector
            assert "training.kubeflow.org/job-role=master" in selector
        pods = self.cluster.step.pods
        body = read(pods) if pods else '{"kind": "PodList", "items": []}'
        # The real API object deserializes the JSON body into a V1PodList; so does this.
        value = k8s.ApiClient().deserialize(_Response(body), "V1PodList")
        return _Async(value) if call.get("kwargs", {}).get("async_req") else value

    def read_namespaced_pod_log(self, *args: Any, **kwargs: Any) -> str:
        real = k8s.CoreV1Api.read_namespaced_pod_log
        call = self.cluster.record(real, args, kwargs, lambda _: ("", "pods/log", "get"))
        if self.cluster.kind == "trainjob":
            assert call["name"] == f"{NAME}-node-0-0-x7k2p"
            assert call.get("kwargs", {}).get("container") == "node"
        else:
            assert call["name"] == f"{NAME}-master-0"
            assert call.get("kwargs", {}).get("container") == "pytorch"
        log = self.cluster.step.log
        if isinstance(log, int):
            raise api_exception(log)
        return read(log) if log else ""


@dataclass
class _Response:
    data: str


def _custom(verb: str) -> Any:
    return lambda call: (call["group"], call["plural"], verb)


class FakeTime:
    """A clock that only moves when the launcher sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def training_client(cluster: Cluster) -> TrainingClient:
    training = TrainingClient(client_configuration=k8s.Configuration(), namespace="elsewhere")
    training.custom_api = FakeCustomObjectsApi(cluster)
    training.core_api = FakeCoreV1Api(cluster)
    return training


def make_launcher(
    cluster: Cluster, fake_time: FakeTime, **kwargs: Any
) -> tuple[PyTorchJobLauncher, list[tuple[int, str]]]:
    """A launcher on ``cluster``, running in the recorded watcher pod unless ``pod`` is given."""
    sink: list[tuple[int, str]] = []  # (step the cluster was at, line)
    kwargs.setdefault("pod", lambda: (NAMESPACE, WATCHER))
    launcher = PyTorchJobLauncher(
        training_client(cluster),
        poll_s=15,
        log_sink=lambda line: sink.append((cluster.index, line)),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        **kwargs,
    )
    return launcher, sink


def make_trainjob_launcher(
    cluster: Cluster, fake_time: FakeTime, **kwargs: Any
) -> tuple[TrainJobLauncher, list[tuple[int, str]]]:
    """A TrainJob launcher on ``cluster``, in the recorded watcher pod unless ``pod`` is given."""
    cluster.kind = "trainjob"
    sink: list[tuple[int, str]] = []  # (step the cluster was at, line)
    kwargs.setdefault("pod", lambda: (NAMESPACE, WATCHER))
    launcher = TrainJobLauncher(
        k8s.ApiClient(k8s.Configuration()),
        poll_s=15,
        log_sink=lambda line: sink.append((cluster.index, line)),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        **kwargs,
    )
    custom, core = FakeCustomObjectsApi(cluster), FakeCoreV1Api(cluster)
    launcher.custom_api = lambda: custom  # type: ignore[method-assign]
    launcher.core_api = lambda: core  # type: ignore[method-assign]
    return launcher, sink


def assert_within_rbac(calls: list[Call]) -> None:
    """Every call is granted by the Role, or is one a launcher only tries (a 403 tolerated)."""
    rules = (*RBAC_RULES, *BEST_EFFORT_RULES)
    allowed = {(group, res, verb) for group, res, verbs in rules for verb in verbs}
    used = {c.rule for c in calls}
    assert used <= allowed, f"calls beyond videollm.launcher.rbac.RBAC_RULES: {used - allowed}"


CREATED = Step("job_created.json", "pods_pending.json")
RUNNING = Step("job_running.json", "pods_running.json", "master_log_running.txt")
SUCCEEDED = Step("job_succeeded.json", "pods_succeeded.json", "master_log.txt")
FAILED = Step("job_failed.json", "pods_failed.json", "master_log_failed.txt")
GONE = Step(404)
TJ_CREATED = Step("trainjob_created.json", "trainjob_pods_pending.json")
TJ_RUNNING = Step("trainjob_running.json", "trainjob_pods_running.json", "master_log_running.txt")
TJ_COMPLETE = Step("trainjob_complete.json", "trainjob_pods_succeeded.json", "master_log.txt")
TJ_FAILED = Step("trainjob_failed.json", "trainjob_pods_failed.json", "master_log_failed.txt")
TJ_DEADLINE = Step("trainjob_deadline.json", "trainjob_pods_failed.json", "master_log_running.txt")


def workflow_owner() -> k8s.V1OwnerReference:
    """The owner reference the job gets from the recorded watcher pod: its Argo Workflow."""
    return k8s.V1OwnerReference(
        api_version="argoproj.io/v1alpha1",
        kind="Workflow",
        name=WORKFLOW,
        uid=WORKFLOW_UID,
        block_owner_deletion=False,
    )
