"""A retried attempt meets its run's earlier job; SIGTERM deletes the job; the job's owner.

Driven through a real ``TrainingClient`` and recorded API responses (:mod:`recorded_cluster`);
every test checks its calls against the launcher's RBAC rules.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import pytest
from recorded_cluster import (
    CREATED,
    FAILED,
    GONE,
    NAME,
    NAMESPACE,
    RUN_ID,
    RUNNING,
    SUCCEEDED,
    WATCHER,
    Cluster,
    FakeTime,
    Step,
    api_exception,
    assert_within_rbac,
    demo_spec,
    make_launcher,
    read,
    recorded,
)

from videollm.cluster import RUN_LABEL
from videollm.errors import VideoLLMError
from videollm.launcher.owner import watcher_pod

CREATE, GET, DELETE, PATCH = (
    "create_namespaced_custom_object",
    "get_namespaced_custom_object",
    "delete_namespaced_custom_object",
    "patch_namespaced_custom_object",
)
WORKFLOW_REF = {
    "apiVersion": "argoproj.io/v1alpha1",
    "blockOwnerDeletion": False,
    "kind": "Workflow",
    "name": "finetune-x7k2p",
    "uid": "5e3b1f7a-2c9d-4a86-8f14-b7e0d2c6a391",
}


def conflict() -> Any:
    return api_exception(409, read("create_conflict.json"))


def job_calls(cluster: Cluster) -> list[str]:
    """The calls on the job itself (create, get, patch, delete), in order, gets collapsed."""
    out: list[str] = []
    for method in cluster.methods():
        if method in (CREATE, GET, DELETE, PATCH) and not (method == GET and out[-1:] == [GET]):
            out.append(method)
    return out


def with_label(name: str, run: str) -> dict[str, Any]:
    body = recorded(name)
    body["metadata"]["labels"][RUN_LABEL] = run
    return body


# --- retries ------------------------------------------------------------------------------------


def test_retry_reattaches_to_the_running_job_of_its_run(caplog: pytest.LogCaptureFixture) -> None:
    cluster = Cluster([RUNNING, RUNNING, SUCCEEDED], create_errors=[conflict()])
    launcher, _ = make_launcher(cluster, FakeTime())
    with caplog.at_level(logging.INFO, logger="videollm.launcher.pytorchjob"):
        result = launcher.run(demo_spec())
    assert result.succeeded, result.reason
    assert result.logs == read("master_log.txt")
    # One create (the 409), then it only watches: no second job, no patch (same Workflow).
    assert job_calls(cluster) == [CREATE, GET, DELETE]
    assert cluster.created == []
    assert any("re-attaching" in r.getMessage() for r in caplog.records)
    assert_within_rbac(cluster.calls)


def test_reattach_points_the_job_at_a_new_owner() -> None:
    """An earlier attempt's job owned by that attempt's bare pod is moved to this one's owner."""
    earlier = recorded("job_running.json")
    earlier["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Pod", "name": "train-attempt-1", "uid": "0a1b2c3d"}
    ]
    cluster = Cluster([Step(earlier), SUCCEEDED], create_errors=[conflict()])
    launcher, _ = make_launcher(cluster, FakeTime())
    assert launcher.run(demo_spec()).succeeded
    assert job_calls(cluster) == [CREATE, GET, PATCH, GET, DELETE]
    # A merge patch that replaces the list with the run's Workflow.
    assert cluster.patches == [{"metadata": {"ownerReferences": [WORKFLOW_REF]}}]
    assert_within_rbac(cluster.calls)


def test_retry_replaces_the_failed_job_of_its_run() -> None:
    # The failed job lingers one poll while its pods go (foreground deletion), then is gone.
    cluster = Cluster([FAILED, FAILED, GONE, CREATED, RUNNING, SUCCEEDED], [conflict()])
    fake_time = FakeTime()
    launcher, _ = make_launcher(cluster, fake_time)
    result = launcher.run(demo_spec())
    assert result.succeeded, result.reason
    assert job_calls(cluster) == [CREATE, GET, DELETE, GET, CREATE, GET, DELETE]
    first_delete = next(c for c in cluster.calls if c.method == DELETE)
    assert first_delete.kwargs["kwargs"]["body"].propagation_policy == "Foreground"
    # The new job is the one this attempt asked for.
    assert cluster.created == [result.manifest]
    assert_within_rbac(cluster.calls)


def test_replacing_gives_up_when_the_old_job_does_not_go() -> None:
    cluster = Cluster([FAILED], create_errors=[conflict()])
    launcher, _ = make_launcher(cluster, FakeTime(), delete_wait_s=60)
    with pytest.raises(VideoLLMError, match=r"still exists 60 s after it was deleted"):
        launcher.run(demo_spec())
    assert cluster.methods().count(CREATE) == 1


def test_retry_reports_the_earlier_success_without_training_again() -> None:
    cluster = Cluster([SUCCEEDED], create_errors=[conflict()])
    launcher, _ = make_launcher(cluster, FakeTime(), delete_on_success=False)
    result = launcher.run(demo_spec())
    assert result.succeeded
    assert result.logs == read("master_log.txt")
    assert job_calls(cluster) == [CREATE, GET]
    assert cluster.created == []
    assert_within_rbac(cluster.calls)


@pytest.mark.parametrize(
    ("theirs", "ours", "shown"),
    [
        ("0e9d8c7b-other-run", RUN_ID, f"videollm.io/run: 0e9d8c7b-other-run, this run: {RUN_ID}"),
        (None, RUN_ID, f"videollm.io/run: unset, this run: {RUN_ID}"),
        (RUN_ID, None, f"videollm.io/run: {RUN_ID}, this run: unset"),
    ],
)
def test_a_job_of_another_run_is_a_clear_error(
    theirs: str | None, ours: str | None, shown: str
) -> None:
    existing = recorded("job_running.json")
    labels = existing["metadata"]["labels"]
    labels.pop(RUN_LABEL)
    if theirs:
        labels[RUN_LABEL] = theirs
    spec = demo_spec()
    if ours is None:
        spec.labels.pop(RUN_LABEL)
    cluster = Cluster([Step(existing)], create_errors=[conflict()])
    launcher, _ = make_launcher(cluster, FakeTime())
    with pytest.raises(VideoLLMError) as info:
        launcher.run(spec)
    message = str(info.value)
    assert f"PyTorchJob {NAMESPACE}/{NAME} already exists and is not this run's" in message
    assert shown in message
    assert f"kubectl -n {NAMESPACE} delete pytorchjob {NAME}" in message
    assert job_calls(cluster) == [CREATE, GET]  # another run's job is never touched
    assert_within_rbac(cluster.calls)


# --- SIGTERM ------------------------------------------------------------------------------------


def test_sigterm_deletes_the_job_and_goes_to_the_previous_handler() -> None:
    cluster = Cluster([CREATED, RUNNING, RUNNING, SUCCEEDED])
    fake_time = FakeTime()
    received: list[int] = []

    def sleep(seconds: float) -> None:
        fake_time.sleep(seconds)
        if len(fake_time.sleeps) == 2:  # while the job runs: KFP terminates the run
            signal.raise_signal(signal.SIGTERM)

    launcher, _ = make_launcher(cluster, fake_time)
    launcher._sleep = sleep
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        result = launcher.run(demo_spec())
        restored = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert cluster.methods()[-1] == DELETE
    assert cluster.methods().count(DELETE) == 1
    assert not result.succeeded
    assert result.reason == f"the watcher got SIGTERM; PyTorchJob {NAMESPACE}/{NAME} was deleted"
    # The handler that was there before is back, and got the signal once.
    assert received == [signal.SIGTERM]
    assert restored is not None and restored.__name__ == "<lambda>"
    assert_within_rbac(cluster.calls)


def test_no_sigterm_handler_is_left_behind() -> None:
    before = signal.getsignal(signal.SIGTERM)
    cluster = Cluster([CREATED, SUCCEEDED])
    launcher, _ = make_launcher(cluster, FakeTime())
    assert launcher.run(demo_spec()).succeeded
    assert signal.getsignal(signal.SIGTERM) is before


# --- the job's owner ----------------------------------------------------------------------------


def _owner_refs(cluster: Cluster) -> Any:
    return cluster.created[0]["metadata"].get("ownerReferences")


def test_a_bare_watcher_pod_owns_the_job_itself() -> None:
    pod = recorded("watcher_pod.json")
    del pod["metadata"]["ownerReferences"]
    cluster = Cluster([CREATED, SUCCEEDED], pod=pod)
    launcher, _ = make_launcher(cluster, FakeTime())
    assert launcher.run(demo_spec()).succeeded
    assert _owner_refs(cluster) == [
        {"apiVersion": "v1", "blockOwnerDeletion": False, "kind": "Pod", "name": WATCHER,
         "uid": pod["metadata"]["uid"]}
    ]  # fmt: skip


def test_an_unreadable_watcher_pod_only_costs_the_owner(caplog: pytest.LogCaptureFixture) -> None:
    cluster = Cluster([CREATED, SUCCEEDED], pod=403)
    launcher, _ = make_launcher(cluster, FakeTime())
    with caplog.at_level(logging.WARNING, logger="videollm.launcher.owner"):
        assert launcher.run(demo_spec()).succeeded
    assert _owner_refs(cluster) is None
    assert any("needs get on pods" in r.getMessage() for r in caplog.records)


def test_outside_a_pod_or_namespace_there_is_no_owner() -> None:
    cluster = Cluster([CREATED, SUCCEEDED])
    launcher, _ = make_launcher(cluster, FakeTime(), pod=lambda: None)
    assert launcher.run(demo_spec()).succeeded
    assert "read_namespaced_pod" not in cluster.methods()
    assert _owner_refs(cluster) is None

    # An owner in another namespace would make the garbage collector delete the job at once.
    cluster = Cluster([CREATED, SUCCEEDED])
    launcher, _ = make_launcher(cluster, FakeTime(), pod=lambda: ("kubeflow", WATCHER))
    assert launcher.run(demo_spec()).succeeded
    assert "read_namespaced_pod" not in cluster.methods()
    assert _owner_refs(cluster) is None


def test_watcher_pod_is_hostname_and_service_account_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace_file = tmp_path / "namespace"
    monkeypatch.setenv("HOSTNAME", WATCHER)
    assert watcher_pod(namespace_file) is None  # no service account: not in a pod
    namespace_file.write_text(f"{NAMESPACE}\n")
    assert watcher_pod(namespace_file) == (NAMESPACE, WATCHER)
