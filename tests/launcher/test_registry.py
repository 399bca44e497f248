"""Launchers by name: ``auto`` picks by where the task runs, each factory gets the settings."""

from __future__ import annotations

import pytest

from videollm.errors import ConfigError
from videollm.kfp.train_params import section_docs
from videollm.kfp.train_task import TrainTaskArgs
from videollm.launcher.local import TorchrunLauncher
from videollm.launcher.pytorchjob import WATCH_GRACE_S, PyTorchJobLauncher
from videollm.launcher.registry import LAUNCHERS, LaunchSettings, choices, make_launcher, resolve
from videollm.launcher.trainjob import TrainJobLauncher


@pytest.fixture
def scratch_launchers(monkeypatch):
    """What the test registers is gone after it (the built-ins are found first, for real)."""
    LAUNCHERS.names()
    monkeypatch.setattr(LAUNCHERS, "_items", dict(LAUNCHERS._items))
    monkeypatch.setattr(LAUNCHERS, "_summaries", dict(LAUNCHERS._summaries))


def test_the_built_in_launchers_are_registered_with_a_summary():
    assert choices() == ["auto", "local", "pytorchjob", "trainjob"]
    assert all(LAUNCHERS.summaries().values())


def test_auto_launcher_is_a_pytorchjob_inside_a_cluster_and_torchrun_outside(monkeypatch):
    settings = LaunchSettings(deadline_s=2 * 3600)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert resolve("auto") == "local"
    assert isinstance(make_launcher("auto", settings), TorchrunLauncher)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    watcher = make_launcher("auto", settings)
    assert isinstance(watcher, PyTorchJobLauncher)
    # The watcher outwaits the job's own deadline, so the operator's DeadlineExceeded comes first.
    assert watcher.timeout_s == 2 * 3600 + WATCH_GRACE_S
    assert watcher.delete_on_success is True
    # A named launcher is itself, wherever the task runs.
    assert isinstance(make_launcher("local", settings), TorchrunLauncher)


def test_the_pytorchjob_launcher_keeps_a_succeeded_job_when_told(monkeypatch):
    kept = make_launcher("pytorchjob", LaunchSettings(deadline_s=60, delete_on_success=False))
    assert isinstance(kept, PyTorchJobLauncher) and kept.delete_on_success is False
    assert kept.timeout_s == 60 + WATCH_GRACE_S


def test_the_trainjob_launcher_outwaits_the_deadline_in_a_cluster(monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    watcher = make_launcher("trainjob", LaunchSettings(deadline_s=60, delete_on_success=False))
    assert isinstance(watcher, TrainJobLauncher)
    assert watcher.timeout_s == 60 + WATCH_GRACE_S and watcher.delete_on_success is False


def test_the_trainjob_launcher_fails_fast_outside_a_cluster(monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError) as info:
        make_launcher("trainjob", LaunchSettings(deadline_s=60))
    message = str(info.value)
    assert "trainjob needs a Kubernetes cluster" in message
    assert "use launcher=local" in message


def test_an_unknown_launcher_is_refused_with_the_choices():
    refused = r"launcher: unknown launcher 'slurm'; choose from auto, local, pytorchjob, trainjob$"
    with pytest.raises(ConfigError, match=refused):
        make_launcher("slurm", LaunchSettings(deadline_s=60))


def test_a_launcher_registered_elsewhere_becomes_a_choice(scratch_launchers):
    @LAUNCHERS.register("fake-by-test-registry", summary="a test's launcher")
    def fake(settings: LaunchSettings) -> TorchrunLauncher:
        return TorchrunLauncher()

    assert "fake-by-test-registry" in choices()
    assert isinstance(make_launcher("fake-by-test-registry", LaunchSettings(60)), TorchrunLauncher)


def test_the_launcher_setting_documents_every_choice():
    doc = section_docs(TrainTaskArgs.__doc__, "Attributes")["launcher"]
    assert all(f"``{name}``" in doc for name in choices()), doc
