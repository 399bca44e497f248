"""The TrainJob launcher on recorded API responses (:mod:`recorded_cluster`): the same watcher
as the PyTorchJob launcher's, so the same behaviour: the log streamed, the job deleted on
success, a failure's reason, deadlines, SIGTERM, and a retried attempt meeting its run's job.
Every test checks its calls against the launcher's RBAC rules.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

import pytest
from crd_schema import CRD_DIR, crd_validator, errors
from recorded_cluster import (
    GONE,
    NAME,
    NAMESPACE,
    RUN_ID,
    TJ_COMPLETE,
    TJ_CREATED,
    TJ_DEADLINE,
    TJ_FAILED,
    TJ_RUNNING,
    Cluster,
    FakeTime,
    Step,
    api_exception,
    assert_within_rbac,
    demo_spec,
    make_trainjob_launcher,
    read,
    recorded,
    workflow_owner,
)

from videollm.cluster import RUN_LABEL
from videollm.errors import ConfigError, VideoLLMError
from videollm.launcher.trainjob_manifest import build_trainjob

CREATE, GET, DELETE, PATCH = (
    "create_namespaced_custom_object",
    "get_namespaced_custom_object",
    "delete_namespaced_custom_object",
    "patch_namespaced_custom_object",
)
WHERE = f"TrainJob {NAMESPACE}/{NAME}"
FAILED_REASON = "FailedJobs: jobset failed due to one or more job failures"


def conflict() -> Any:
    return api_exception(409, read("trainjob_create_conflict.json"))


def job_calls(cluster: Cluster) -> list[str]:
    """The calls on the TrainJob itself, in order, repeated gets collapsed."""
    out: list[str] = []
    for call in cluster.calls:
        if call.rule[1] != "trainjobs":
            continue
        if not (call.method == GET and out[-1:] == [GET]):
            out.append(call.method)
    return out


# --- the recordings are what the CRD allows -----------------------------------------------------


@pytest.mark.parametrize(
    "name", ["trainjob_created.json", "trainjob_complete.json", "trainjob_failed.json",
             "trainjob_deadline.json"],
)  # fmt: skip
def test_recorded_trainjobs_match_the_crd(name: str) -> None:
    path = CRD_DIR / "trainer-v2.3.0" / "trainer.kubeflow.org_trainjobs.yaml"
    if not path.exists():
        pytest.skip(f"TrainJob CRD not found at {path}")
    assert errors(crd_validator(path, "v1alpha1"), recorded(name)) == []


# --- success, failure, deadlines ------------------------------------------------------------


def test_success_streams_node0_log_and_deletes_the_job(caplog: pytest.LogCaptureFixture) -> None:
    cluster = Cluster([TJ_CREATED, TJ_RUNNING, TJ_RUNNING, TJ_COMPLETE])
    fake_time = FakeTime()
    launcher, sink = make_trainjob_launcher(cluster, fake_time)
    spec = demo_spec()
    with caplog.at_level(logging.INFO, logger="videollm.launcher.trainjob"):
        result = launcher.run(spec)

    assert result.succeeded, result.reason
    # What was POSTed: the spec's TrainJob on the (checked) ClusterTrainingRuntime, owned by
    # the run's Workflow.
    assert cluster.created == [result.manifest]
    assert result.manifest == build_trainjob(spec, "ClusterTrainingRuntime", workflow_owner())
    assert result.logs == read("master_log.txt")
    first_step, first_line = sink[0]
    assert first_step == 1 and "client socket has failed to connect" in first_line
    assert [line for _, line in sink] == read("master_log.txt").splitlines()
    master = [
        r.getMessage() for r in caplog.records if r.name == "videollm.launcher.trainjob.master"
    ]
    assert master[-1].startswith(f"[{NAME}-node-0-0-x7k2p] ")
    assert any(f"created {WHERE}" in r.getMessage() for r in caplog.records)
    assert any("Complete (jobset completed successfully)" in r.getMessage() for r in caplog.records)

    methods = cluster.methods()
    assert methods[:4] == [
        "read_namespaced_pod",
        GET,  # the namespaced TrainingRuntime: 404
        "get_cluster_custom_object",  # the ClusterTrainingRuntime
        CREATE,
    ]
    assert job_calls(cluster) == [CREATE, GET, DELETE]
    assert methods[-1] == DELETE
    assert fake_time.sleeps == [15, 15, 15]
    assert_within_rbac(cluster.calls)


def test_success_can_keep_the_job() -> None:
    cluster = Cluster([TJ_CREATED, TJ_COMPLETE])
    launcher, _ = make_trainjob_launcher(cluster, FakeTime(), delete_on_success=False)
    assert launcher.run(demo_spec()).succeeded
    assert DELETE not in cluster.methods()


def test_failure_reports_the_condition_and_keeps_the_job(caplog: pytest.LogCaptureFixture) -> None:
    cluster = Cluster([TJ_CREATED, TJ_FAILED])
    launcher, _ = make_trainjob_launcher(cluster, FakeTime())
    with caplog.at_level(logging.INFO, logger="videollm.launcher.trainjob"):
        result = launcher.run(demo_spec())
    assert not result.succeeded
    assert result.reason == FAILED_REASON
    assert "feature file s3://videollm/features/v_8Fj2kQ0.safetensors does not exist" in result.logs
    assert DELETE not in cluster.methods()  # kept, with its pods, for kubectl logs
    errors_logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors_logged) == 1
    assert FAILED_REASON in errors_logged[0] and "(job and pods kept)" in errors_logged[0]
    assert errors_logged[0].endswith(read("master_log_failed.txt").rstrip("\n"))
    assert_within_rbac(cluster.calls)


def test_the_jobs_own_deadline_is_a_failure_with_its_reason() -> None:
    cluster = Cluster([TJ_CREATED, TJ_RUNNING, TJ_DEADLINE])
    launcher, _ = make_trainjob_launcher(cluster, FakeTime())
    result = launcher.run(demo_spec())
    assert not result.succeeded
    assert result.reason == "DeadlineExceeded: TrainJob exceeded its active deadline"
    assert DELETE not in cluster.methods()
    assert result.manifest["spec"]["activeDeadlineSeconds"] == 48 * 3600


def test_the_watcher_timeout_deletes_the_job() -> None:
    cluster = Cluster([TJ_CREATED, TJ_RUNNING])
    fake_time = FakeTime()
    launcher, _ = make_trainjob_launcher(cluster, fake_time, timeout_s=60)
    result = launcher.run(demo_spec())
    assert result.reason == "timed out after 60 s"
    assert fake_time.sleeps == [15, 15, 15, 15]
    assert cluster.methods()[-1] == DELETE
    assert result.logs == read("master_log_running.txt") + "\n"
    assert_within_rbac(cluster.calls)


def test_sigterm_deletes_the_job_and_goes_to_the_previous_handler() -> None:
    cluster = Cluster([TJ_CREATED, TJ_RUNNING, TJ_RUNNING, TJ_COMPLETE])
    fake_time = FakeTime()
    received: list[int] = []

    def sleep(seconds: float) -> None:
        fake_time.sleep(seconds)
        if len(fake_time.sleeps) == 2:  # while the job runs: KFP terminates the run
            signal.raise_signal(signal.SIGTERM)

    launcher, _ = make_trainjob_launcher(cluster, fake_time)
    launcher._sleep = sleep
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        result = launcher.run(demo_spec())
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not result.succeeded
    assert result.reason == f"the watcher got SIGTERM; {WHERE} was deleted"
    assert cluster.methods()[-1] == DELETE and cluster.methods().count(DELETE) == 1
    assert received == [signal.SIGTERM]
    assert_within_rbac(cluster.calls)


# --- retries ------------------------------------------------------------------------------------


def test_retry_reattaches_to_the_running_job_of_its_run(caplog: pytest.LogCaptureFixture) -> None:
    cluster = Cluster([TJ_RUNNING, TJ_RUNNING, TJ_COMPLETE], create_errors=[conflict()])
    launcher, _ = make_trainjob_launcher(cluster, FakeTime())
    with caplog.at_level(logging.INFO, logger="videollm.launcher.trainjob"):
        result = launcher.run(demo_spec())
    assert result.succeeded, result.reason
    assert result.logs == read("master_log.txt")
    assert job_calls(cluster) == [CREATE, GET, DELETE]  # same Workflow: no patch
    assert cluster.created == []
    assert any(f"re-attaching to {WHERE}" in r.getMessage() for r in caplog.records)
    assert_within_rbac(cluster.calls)


def test_reattach_points_the_job_at_a_new_owner() -> None:
    earlier = recorded("trainjob_running.json")
    earlier["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Pod", "name": "train-attempt-1", "uid": "0a1b2c3d"}
    ]
    cluster = Cluster([Step(earlier), TJ_COMPLETE], create_errors=[conflict()])
    launcher, _ = make_trainjob_launcher(cluster, FakeTime())
    assert launcher.run(demo_spec()).succeeded
    assert job_calls(cluster) == [CREATE, GET, PATCH, GET, DELETE]
    (patch,) = cluster.patches
    assert patch["metadata"]["ownerReferences"][0]["kind"] == "Workflow"


def test_retry_replaces_the_failed_job_of_its_run() -> None:
    cluster = Cluster([TJ_FAILED, TJ_FAILED, GONE, TJ_CREATED, TJ_COMPLETE], [conflict()])
    launcher, _ = make_trainjob_launcher(cluster, FakeTime())
    result = launcher.run(demo_spec())
    assert result.succeeded, result.reason
    assert job_calls(cluster) == [CREATE, GET, DELETE, GET, CREATE, GET, DELETE]
    first_delete = next(c for c in cluster.calls if c.method == DELETE)
    assert first_delete.kwargs["kwargs"]["body"].propagation_policy == "Foreground"
    assert cluster.created == [result.manifest]
    assert_within_rbac(cluster.calls)


def test_a_job_of_another_run_is_a_clear_error() -> None:
    existing = recorded("trainjob_running.json")
    existing["metadata"]["labels"][RUN_LABEL] = "0e9d8c7b-other-run"
    cluster = Cluster([Step(existing)], create_errors=[conflict()])
    launcher, _ = make_trainjob_launcher(cluster, FakeTime())
    with pytest.raises(VideoLLMError) as info:
        launcher.run(demo_spec())
    message = str(info.value)
    assert f"{WHERE} already exists and is not this run's" in message
    assert f"videollm.io/run: 0e9d8c7b-other-run, this run: {RUN_ID}" in message
    assert f"kubectl -n {NAMESPACE} delete trainjob {NAME}" in message
    assert job_calls(cluster) == [CREATE, GET]


def test_create_forbidden_names_the_permission() -> None:
    error = api_exception(403, read("trainjob_create_forbidden.json"))
    cluster = Cluster([TJ_CREATED], create_errors=[error])
    launcher, _ = make_trainjob_launcher(cluster, FakeTime())
    with pytest.raises(VideoLLMError) as info:
        launcher.run(demo_spec())
    message = str(info.value)
    assert "needs 'create' on trainjobs.trainer.kubeflow.org in namespace 'ml-team'" in message
    assert 'cannot create resource "trainjobs"' in message


# --- the runtime --------------------------------------------------------------------------------


def test_a_namespaced_training_runtime_is_referenced_as_one() -> None:
    runtime = recorded("trainjob_runtime.json")
    runtime["kind"] = "TrainingRuntime"
    runtime["metadata"]["namespace"] = NAMESPACE
    cluster = Cluster([TJ_CREATED, TJ_COMPLETE], runtimes={"trainingruntimes": runtime})
    launcher, _ = make_trainjob_launcher(cluster, FakeTime())
    result = launcher.run(demo_spec())
    assert result.manifest["spec"]["runtimeRef"]["kind"] == "TrainingRuntime"
    assert "get_cluster_custom_object" not in cluster.methods()


def test_a_cluster_runtime_that_cannot_be_read_is_left_to_the_webhook(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtimes: dict[str, Any] = {"trainingruntimes": 404, "clustertrainingruntimes": 403}
    cluster = Cluster([TJ_CREATED, TJ_COMPLETE], runtimes=runtimes)
    launcher, _ = make_trainjob_launcher(cluster, FakeTime())
    with caplog.at_level(logging.INFO, logger="videollm.launcher.trainjob"):
        result = launcher.run(demo_spec())
    assert result.succeeded
    assert result.manifest["spec"]["runtimeRef"]["kind"] == "ClusterTrainingRuntime"
    assert any("cannot check ClusterTrainingRuntime" in r.getMessage() for r in caplog.records)
    assert_within_rbac(cluster.calls)


def test_a_missing_runtime_is_a_config_error_before_any_job() -> None:
    runtimes: dict[str, Any] = {"trainingruntimes": 404, "clustertrainingruntimes": 404}
    cluster = Cluster([TJ_CREATED], runtimes=runtimes)
    launcher, _ = make_trainjob_launcher(cluster, FakeTime())
    with pytest.raises(ConfigError, match=r"trainjob_runtime: runtime 'videollm-torch' not found"):
        launcher.run(demo_spec())
    assert CREATE not in cluster.methods()


def test_an_mpi_runtime_is_refused() -> None:
    spec = demo_spec()
    spec.runtime = "deepspeed-distributed"
    cluster = Cluster([TJ_CREATED], runtimes={
        "trainingruntimes": 404, "clustertrainingruntimes": "trainjob_runtime_mpi.json"
    })  # fmt: skip
    launcher, _ = make_trainjob_launcher(cluster, FakeTime())
    with pytest.raises(ConfigError, match=r"deepspeed-distributed launches its nodes with MPI"):
        launcher.run(spec)
    assert CREATE not in cluster.methods()
