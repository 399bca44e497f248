"""Inside a cluster, a task fails on start, naming the platform object that did not arrive."""

from __future__ import annotations

import pytest

from videollm.errors import ConfigError
from videollm.kfp.preflight import check_platform
from videollm.kfp.task_io import init_task
from videollm.kfp.tasks import evaluate_checkpoint

PLATFORM = {
    "MLFLOW_TRACKING_URI": "http://videollm-mlflow:5000",
    "AWS_ACCESS_KEY_ID": "key",
    "AWS_SECRET_ACCESS_KEY": "secret",
}


@pytest.fixture
def in_a_pod(monkeypatch):
    """A pod's environment: the API server's address, and the platform's variables set."""
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.delenv("VIDEOLLM_S3_SECRET_DIR", raising=False)
    for name, value in PLATFORM.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_a_missing_config_map_is_named_by_the_first_task(in_a_pod):
    in_a_pod.delenv("MLFLOW_TRACKING_URI")
    # init_task is what every component calls first: it must fail there, before any work.
    with pytest.raises(ConfigError, match="the platform ConfigMap 'team-platform' is missing"):
        init_task("videollm", "team-platform", "team-credentials")


def test_a_missing_secret_is_named(in_a_pod):
    in_a_pod.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ConfigError) as err:
        check_platform("team-platform", "team-credentials")
    message = str(err.value)
    assert "AWS_SECRET_ACCESS_KEY not set: the platform Secret 'team-credentials'" in message
    assert "ConfigMap" not in message and "AWS_ACCESS_KEY_ID" not in message


def test_both_missing_are_reported_together(in_a_pod):
    for name in PLATFORM:
        in_a_pod.delenv(name)
    with pytest.raises(ConfigError) as err:
        check_platform("team-platform", "team-credentials")
    assert "ConfigMap 'team-platform'" in str(err.value)
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set" in str(err.value)


def test_a_mounted_secret_folder_stands_in_for_the_keys(in_a_pod, tmp_path):
    in_a_pod.delenv("AWS_ACCESS_KEY_ID")
    in_a_pod.setenv("VIDEOLLM_S3_SECRET_DIR", str(tmp_path))
    check_platform("team-platform", "team-credentials")


def test_nothing_is_checked_outside_a_cluster_or_for_unnamed_objects(in_a_pod):
    for name in PLATFORM:
        in_a_pod.delenv(name)
    check_platform("", "")  # `pipeline run --local` inside a notebook pod: no platform asked
    in_a_pod.delenv("KUBERNETES_SERVICE_HOST")
    check_platform("team-platform", "team-credentials")  # a laptop: SQLite and folders are fine


def test_evaluate_takes_zero_or_one_gpu():
    with pytest.raises(ConfigError, match=r"eval_gpus: 0 \(CPU\) or 1 \(one GPU\), got '2'"):
        evaluate_checkpoint("ckpt", "records", "features", "out", "2")


def test_evaluate_on_cuda_without_a_gpu_fails_before_loading_the_model():
    import torch

    from videollm.eval.evaluate import check_device

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    with pytest.raises(ConfigError, match="device: 'cuda', but no CUDA GPU is visible"):
        check_device("cuda")
    check_device("cpu")
