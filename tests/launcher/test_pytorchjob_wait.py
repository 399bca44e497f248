"""The PyTorchJob wait loop, driven through a real ``TrainingClient`` and recorded API responses.

There is no Kubernetes API server here, so the client's two low-level API objects
(``custom_api``: ``CustomObjectsApi``, ``core_api``: ``CoreV1Api``) are replaced by fakes that
replay the bodies under ``recordings/`` (see its README) one poll at a time. Everything above
them — ``create_job``, ``get_job``, the condition helpers, ``get_job_logs``, ``delete_job`` and the
model deserialization — is the real kubeflow-training code. Every call is recorded and checked
against the launcher's RBAC rules.
"""

from __future__ import annotations

import inspect
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubeflow.training import TrainingClient
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from videollm.errors import VideoLLMError
from videollm.launcher.base import TrainJobSpec
from videollm.launcher.pytorchjob import PyTorchJobLauncher
from videollm.launcher.pytorchjob_manifest import build_pytorchjob, manifest_dict
from videollm.launcher.rbac import RBAC_RULES

RECORDINGS = Path(__file__).parent / "recordings"
NAME, NAMESPACE = "videollm-train-demo", "ml-team"
FAILED_REASON = (
    "PyTorchJobFailed: PyTorchJob ml-team/videollm-train-demo is failed because "
    "1 Master replica(s) failed."
)


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
        env_from_secrets=["videollm-platform"],
    )  # fmt: skip


def _read(name: str) -> str:
    return (RECORDINGS / name).read_text()


# --- the replaying cluster ----------------------------------------------------------------------


@dataclass
class Step:
    """What the cluster shows during one poll.

    Attributes:
        job: Recorded PyTorchJob body, or an HTTP status the ``get`` fails with.
        pods: Recorded master PodList (``None``: no pods yet).
        log: Recorded master log, or an HTTP status reading it fails with.
    """

    job: str | int
    pods: str | None = None
    log: str | int | None = None


@dataclass
class Call:
    method: str
    rule: tuple[str, str, str]  # (apiGroup, resource, verb) it needs
    kwargs: dict[str, Any]


@dataclass
class Cluster:
    """Replays ``steps``; each job ``get`` moves to the next one (the last one repeats)."""

    steps: list[Step]
    create_error: ApiException | None = None
    calls: list[Call] = field(default_factory=list)
    created: dict[str, Any] | None = None
    index: int = -1

    @property
    def step(self) -> Step:
        return self.steps[max(self.index, 0)]

    def record(self, real: Any, args: tuple[Any, ...], kwargs: dict[str, Any], rule: Any) -> Any:
        # Calls must fit the real method's signature, or the fake would hide a broken call.
        bound = inspect.signature(real).bind(None, *args, **kwargs).arguments
        self.calls.append(Call(real.__name__, rule(bound), bound))
        return bound


class _Async:
    """What ``async_req=True`` returns (an ``ApplyResult``): the value, or the error, on get()."""

    def __init__(self, value: Any = None, error: Exception | None = None) -> None:
        self._value, self._error = value, error

    def get(self, timeout: float | None = None) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


def _api_exception(status: int, body: str | None = None) -> ApiException:
    exc = ApiException(status=status, reason={403: "Forbidden", 404: "Not Found",
                                              409: "Conflict"}.get(status, "Error"))  # fmt: skip
    exc.body = body
    return exc


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
        if self.cluster.create_error is not None:
            raise self.cluster.create_error
        self.cluster.created = k8s.ApiClient().sanitize_for_serialization(call["body"])
        return self.cluster.created

    def get_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        real = k8s.CustomObjectsApi.get_namespaced_custom_object
        call = self.cluster.record(real, args, kwargs, _custom("get"))
        assert (call["namespace"], call["name"]) == (NAMESPACE, NAME)
        self.cluster.index = min(self.cluster.index + 1, len(self.cluster.steps) - 1)
        job = self.cluster.step.job
        if isinstance(job, int):
            result = _Async(error=_api_exception(job))
        else:
            result = _Async(json.loads(_read(job)))
        return result if call["kwargs"].get("async_req") else result.get()

    def delete_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        real = k8s.CustomObjectsApi.delete_namespaced_custom_object
        call = self.cluster.record(real, args, kwargs, _custom("delete"))
        assert (call["namespace"], call["name"]) == (NAMESPACE, NAME)
        return {"kind": "Status", "apiVersion": "v1", "status": "Success"}


class FakeCoreV1Api(_Refuses):
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def list_namespaced_pod(self, *args: Any, **kwargs: Any) -> Any:
        real = k8s.CoreV1Api.list_namespaced_pod
        call = self.cluster.record(real, args, kwargs, lambda _: ("", "pods", "list"))
        assert call["namespace"] == NAMESPACE
        selector = call["kwargs"]["label_selector"]
        assert f"training.kubeflow.org/job-name={NAME}" in selector.split(",")
        assert "training.kubeflow.org/job-role=master" in selector.split(",")
        pods = self.cluster.step.pods
        body = _read(pods) if pods else '{"kind": "PodList", "items": []}'
        # The real API object deserializes the JSON body into a V1PodList; so does this.
        value = k8s.ApiClient().deserialize(_Response(body), "V1PodList")
        return _Async(value) if call["kwargs"].get("async_req") else value

    def read_namespaced_pod_log(self, *args: Any, **kwargs: Any) -> str:
        real = k8s.CoreV1Api.read_namespaced_pod_log
        call = self.cluster.record(real, args, kwargs, lambda _: ("", "pods/log", "get"))
        assert call["name"] == f"{NAME}-master-0"
        assert call["kwargs"].get("container") == "pytorch"
        log = self.cluster.step.log
        if isinstance(log, int):
            raise _api_exception(log)
        return _read(log) if log else ""


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


def make_launcher(
    cluster: Cluster, fake_time: FakeTime, **kwargs: Any
) -> tuple[PyTorchJobLauncher, list[tuple[int, str]]]:
    training = TrainingClient(client_configuration=k8s.Configuration(), namespace="elsewhere")
    training.custom_api = FakeCustomObjectsApi(cluster)
    training.core_api = FakeCoreV1Api(cluster)
    sink: list[tuple[int, str]] = []  # (step the cluster was at, line)
    launcher = PyTorchJobLauncher(
        training,
        poll_s=15,
        log_sink=lambda line: sink.append((cluster.index, line)),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        **kwargs,
    )
    return launcher, sink


def assert_within_rbac(calls: list[Call]) -> None:
    allowed = {(group, res, verb) for group, res, verbs in RBAC_RULES for verb in verbs}
    used = {c.rule for c in calls}
    assert used <= allowed, f"calls beyond videollm.launcher.rbac.RBAC_RULES: {used - allowed}"


def _methods(cluster: Cluster) -> list[str]:
    return [c.method for c in cluster.calls]


CREATED = Step("job_created.json", "pods_pending.json")
RUNNING = Step("job_running.json", "pods_running.json", "master_log_running.txt")
SUCCEEDED = Step("job_succeeded.json", "pods_succeeded.json", "master_log.txt")
FAILED = Step("job_failed.json", "pods_failed.json", "master_log_failed.txt")


# --- tests --------------------------------------------------------------------------------------


def test_success_streams_logs_and_deletes_job(caplog: pytest.LogCaptureFixture) -> None:
    cluster = Cluster([CREATED, RUNNING, RUNNING, SUCCEEDED])
    fake_time = FakeTime()
    launcher, sink = make_launcher(cluster, fake_time)
    spec = demo_spec()
    with caplog.at_level(logging.INFO, logger="videollm.launcher.pytorchjob"):
        result = launcher.run(spec)

    assert result.succeeded, result.reason
    assert result.reason == ""
    assert result.manifest == manifest_dict(build_pytorchjob(spec))
    assert cluster.created == result.manifest  # what was POSTed
    # The whole log, each line once: the mid-run read was cut mid-line and must not duplicate.
    assert result.logs == _read("master_log.txt")
    assert "saved checkpoint to s3://videollm/ckpt/demo" in result.logs
    # Lines reached the sink while the job was still running (step 1), not only at the end.
    first_step, first_line = sink[0]
    assert first_step == 1 and "client socket has failed to connect" in first_line
    assert [line for _, line in sink] == _read("master_log.txt").splitlines()
    master_lines = [r.getMessage() for r in caplog.records if r.name.endswith(".master")]
    assert f"[{NAME}-master-0] {{'loss': 1.6518, 'grad_norm': 0.871, " in master_lines[-3]
    assert any("Running" in r.getMessage() for r in caplog.records)

    methods = _methods(cluster)
    assert methods[0] == "create_namespaced_custom_object"
    assert methods.count("get_namespaced_custom_object") == 4
    assert methods[-1] == "delete_namespaced_custom_object"
    assert "read_namespaced_pod_log" in methods
    assert fake_time.sleeps == [15, 15, 15]
    assert_within_rbac(cluster.calls)


def test_success_can_keep_the_job() -> None:
    cluster = Cluster([CREATED, RUNNING, SUCCEEDED])
    launcher, _ = make_launcher(cluster, FakeTime(), delete_on_success=False)
    result = launcher.run(demo_spec())
    assert result.succeeded
    assert "delete_namespaced_custom_object" not in _methods(cluster)
    assert_within_rbac(cluster.calls)


def test_failure_reports_condition_and_keeps_job() -> None:
    cluster = Cluster([CREATED, FAILED])
    launcher, _ = make_launcher(cluster, FakeTime())
    result = launcher.run(demo_spec())
    assert not result.succeeded
    assert result.reason == FAILED_REASON
    assert "CUDA out of memory" in result.logs
    assert result.manifest["metadata"]["name"] == NAME
    assert "delete_namespaced_custom_object" not in _methods(cluster)
    assert_within_rbac(cluster.calls)


def test_timeout_deletes_job() -> None:
    cluster = Cluster([CREATED, RUNNING])
    fake_time = FakeTime()
    launcher, _ = make_launcher(cluster, fake_time, timeout_s=60)
    result = launcher.run(demo_spec())
    assert not result.succeeded
    assert result.reason == "timed out after 60 s"
    assert fake_time.sleeps == [15, 15, 15, 15]
    assert _methods(cluster)[-1] == "delete_namespaced_custom_object"
    # What the master printed before the deadline, including its unfinished last line.
    assert result.logs == _read("master_log_running.txt") + "\n"
    assert_within_rbac(cluster.calls)


def test_restarted_container_log_is_followed_again() -> None:
    restarted = Step("job_running.json", "pods_running.json", "master_log_failed.txt")
    cluster = Cluster([RUNNING, restarted, FAILED])
    launcher, sink = make_launcher(cluster, FakeTime())
    result = launcher.run(demo_spec())
    assert result.reason == FAILED_REASON
    lines = [line for _, line in sink]
    assert lines[-len(_read("master_log_failed.txt").splitlines()) :] == (
        _read("master_log_failed.txt").splitlines()
    )
    assert "--- container restarted ---" in result.logs


def test_transient_get_errors_are_retried(caplog: pytest.LogCaptureFixture) -> None:
    cluster = Cluster([CREATED, Step(500), Step(503), SUCCEEDED])
    launcher, _ = make_launcher(cluster, FakeTime())
    with caplog.at_level(logging.WARNING, logger="videollm.launcher.pytorchjob"):
        result = launcher.run(demo_spec())
    assert result.succeeded
    assert sum("retrying" in r.getMessage() for r in caplog.records) == 2


def test_unreadable_log_warns_once_and_does_not_fail_the_job(
    caplog: pytest.LogCaptureFixture,
) -> None:
    forbidden_log = Step("job_running.json", "pods_running.json", 403)
    cluster = Cluster([CREATED, forbidden_log, forbidden_log, SUCCEEDED])
    launcher, _ = make_launcher(cluster, FakeTime())
    with caplog.at_level(logging.WARNING, logger="videollm.launcher.pytorchjob"):
        result = launcher.run(demo_spec())
    assert result.succeeded
    warnings = [
        r.getMessage() for r in caplog.records if "cannot read the master's log" in r.getMessage()
    ]
    assert len(warnings) == 1 and "get on pods/log" in warnings[0]
    # Once readable again (the finished pod), the whole log is collected.
    assert result.logs == _read("master_log.txt")


def test_forbidden_get_names_the_permission() -> None:
    cluster = Cluster([CREATED, Step(403)])
    launcher, _ = make_launcher(cluster, FakeTime())
    with pytest.raises(VideoLLMError, match=r"needs 'get' on pytorchjobs\.kubeflow\.org"):
        launcher.run(demo_spec())


def test_job_deleted_underneath() -> None:
    cluster = Cluster([CREATED, RUNNING, Step(404)])
    launcher, _ = make_launcher(cluster, FakeTime())
    result = launcher.run(demo_spec())
    assert not result.succeeded
    assert "disappeared" in result.reason
    assert "delete_namespaced_custom_object" not in _methods(cluster)


def test_create_conflict_names_the_job() -> None:
    cluster = Cluster([CREATED], create_error=_api_exception(409, _read("create_conflict.json")))
    launcher, _ = make_launcher(cluster, FakeTime())
    with pytest.raises(VideoLLMError, match=f"PyTorchJob {NAMESPACE}/{NAME} already exists"):
        launcher.run(demo_spec())
    assert _methods(cluster) == ["create_namespaced_custom_object"]
    assert_within_rbac(cluster.calls)


def test_create_forbidden_names_the_permission() -> None:
    error = _api_exception(403, _read("create_forbidden.json"))
    cluster = Cluster([CREATED], create_error=error)
    launcher, _ = make_launcher(cluster, FakeTime())
    with pytest.raises(VideoLLMError) as info:
        launcher.run(demo_spec())
    message = str(info.value)
    assert "needs 'create' on pytorchjobs.kubeflow.org in namespace 'ml-team'" in message
    assert "RBAC_RULES" in message
    assert 'cannot create resource "pytorchjobs"' in message  # the API server's own words


def test_rbac_check_catches_calls_outside_the_rules() -> None:
    """The guard itself: a call the Role does not grant (listing events) is flagged."""
    cluster = Cluster([RUNNING])
    training = TrainingClient(client_configuration=k8s.Configuration())
    training.custom_api = FakeCustomObjectsApi(cluster)
    training.core_api = FakeCoreV1Api(cluster)
    with pytest.raises(AssertionError, match="unexpected Kubernetes API call"):
        training.get_job_logs(NAME, namespace=NAMESPACE, verbose=True)
    with pytest.raises(AssertionError, match=r"beyond videollm\.launcher\.rbac\.RBAC_RULES"):
        assert_within_rbac(cluster.calls)
