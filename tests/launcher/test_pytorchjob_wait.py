"""The PyTorchJob wait loop, driven through a real ``TrainingClient`` and recorded API responses
(:mod:`recorded_cluster`). Every test checks its calls against the launcher's RBAC rules.
"""

from __future__ import annotations

import logging

import pytest
from kubeflow.training import TrainingClient
from kubernetes import client as k8s
from recorded_cluster import (
    CREATED,
    FAILED,
    NAME,
    NAMESPACE,
    RUNNING,
    SUCCEEDED,
    Cluster,
    FakeCoreV1Api,
    FakeCustomObjectsApi,
    FakeTime,
    Step,
    api_exception,
    assert_within_rbac,
    demo_spec,
    make_launcher,
    read,
    workflow_owner,
)

from videollm.errors import VideoLLMError
from videollm.launcher.pytorchjob_manifest import build_pytorchjob, manifest_dict

FAILED_REASON = (
    "PyTorchJobFailed: PyTorchJob ml-team/videollm-train-demo is failed because "
    "1 Master replica(s) failed."
)


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
    # What was POSTed: the spec's job, owned by the run's Workflow (from the watcher pod).
    assert cluster.created == [result.manifest]
    assert result.manifest == manifest_dict(build_pytorchjob(spec, workflow_owner()))
    # The whole log, each line once: the mid-run read was cut mid-line and must not duplicate.
    assert result.logs == read("master_log.txt")
    assert "saved checkpoint to s3://videollm/ckpt/demo" in result.logs
    # Lines reached the sink while the job was still running (step 1), not only at the end.
    first_step, first_line = sink[0]
    assert first_step == 1 and "client socket has failed to connect" in first_line
    assert [line for _, line in sink] == read("master_log.txt").splitlines()
    master_lines = [r.getMessage() for r in caplog.records if r.name.endswith(".master")]
    assert f"[{NAME}-master-0] {{'loss': 1.6518, 'grad_norm': 0.871, " in master_lines[-3]
    assert any("Running" in r.getMessage() for r in caplog.records)

    methods = cluster.methods()
    assert methods[:2] == ["read_namespaced_pod", "create_namespaced_custom_object"]
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
    assert "delete_namespaced_custom_object" not in cluster.methods()
    assert_within_rbac(cluster.calls)


def test_failure_reports_condition_keeps_job_and_logs_the_tail_at_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = Cluster([CREATED, FAILED])
    launcher, _ = make_launcher(cluster, FakeTime())
    with caplog.at_level(logging.INFO, logger="videollm.launcher.pytorchjob"):
        result = launcher.run(demo_spec())
    assert not result.succeeded
    assert result.reason == FAILED_REASON
    cause = "feature file s3://videollm/features/v_8Fj2kQ0.safetensors does not exist"
    assert cause in result.logs
    assert result.manifest["metadata"]["name"] == NAME
    # Kept (with its pods) for the TTL, so `kubectl logs` still works.
    assert "delete_namespaced_custom_object" not in cluster.methods()
    # The task log holds the master's last lines at ERROR, not only the streamed INFO lines.
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert FAILED_REASON in errors[0] and "kept for 86400 s" in errors[0]
    assert errors[0].endswith(read("master_log_failed.txt").rstrip("\n"))
    assert_within_rbac(cluster.calls)


def test_timeout_deletes_job() -> None:
    cluster = Cluster([CREATED, RUNNING])
    fake_time = FakeTime()
    launcher, _ = make_launcher(cluster, fake_time, timeout_s=60)
    result = launcher.run(demo_spec())
    assert not result.succeeded
    assert result.reason == "timed out after 60 s"
    assert fake_time.sleeps == [15, 15, 15, 15]
    assert cluster.methods()[-1] == "delete_namespaced_custom_object"
    # What the master printed before the deadline, including its unfinished last line.
    assert result.logs == read("master_log_running.txt") + "\n"
    assert_within_rbac(cluster.calls)


def test_restarted_container_log_is_followed_again() -> None:
    restarted = Step("job_running.json", "pods_running.json", "master_log_failed.txt")
    cluster = Cluster([RUNNING, restarted, FAILED])
    launcher, sink = make_launcher(cluster, FakeTime())
    result = launcher.run(demo_spec())
    assert result.reason == FAILED_REASON
    lines = [line for _, line in sink]
    assert lines[-len(read("master_log_failed.txt").splitlines()) :] == (
        read("master_log_failed.txt").splitlines()
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
    assert result.logs == read("master_log.txt")


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
    assert "delete_namespaced_custom_object" not in cluster.methods()


def test_create_forbidden_names_the_permission() -> None:
    error = api_exception(403, read("create_forbidden.json"))
    cluster = Cluster([CREATED], create_errors=[error])
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
