"""MLflow with its basic-auth app: only a client with the login moves ``@champion``.

Runs against a real ``mlflow server --app-name basic-auth`` (see ``mlflow_auth_server``), with
the login given to clients the way the chart gives it: ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD``.
"""

from __future__ import annotations

import uuid

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from videollm.cli.main import main
from videollm.errors import TrackingError
from videollm.tracking import CHECKPOINT_TAG, log_metrics, select_champion, step_run
from videollm.tracking.lookup import registry_version

METRIC = "val/exact_match"
USER, PASSWORD = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"


def _finished_run(name: str, value: float) -> str:
    with step_run(name, {}, tags={CHECKPOINT_TAG: f"s3://ckpt/{name}"}) as run:
        log_metrics({METRIC: value})
    return run.info.run_id


def test_only_a_logged_in_client_moves_the_champion(
    mlflow_auth_server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = mlflow_auth_server
    experiment, model = f"auth-{uuid.uuid4().hex[:8]}", f"videollm-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", experiment)

    # With the login in the environment, videollm's own steps record runs and promote.
    monkeypatch.setenv(USER, server.username)
    monkeypatch.setenv(PASSWORD, server.password)
    worse = _finished_run("worse", 0.4)
    best = _finished_run("best", 0.8)
    result = select_champion(experiment, METRIC, "max", model)
    assert result.promoted and result.best is not None and result.best.run_id == best
    admin = MlflowClient(server.url)  # MLflow reads the login from the environment per call
    other = admin.create_model_version(model, source="s3://ckpt/worse", run_id=worse).version

    # Without a login the registry refuses to move the alias (401), and it stays put.
    monkeypatch.delenv(USER)
    monkeypatch.delenv(PASSWORD)
    with pytest.raises(MlflowException) as refused:
        MlflowClient(server.url).set_registered_model_alias(model, "champion", other)
    assert refused.value.get_http_status_code() == 401
    with pytest.raises(TrackingError, match=f"requires a login.*{USER} is not set"):
        select_champion(experiment, METRIC, "max", model)

    # A wrong password: one line naming the URI and user variables, never the password.
    wrong = f"not-{server.password}"
    monkeypatch.setenv(USER, server.username)
    monkeypatch.setenv(PASSWORD, wrong)
    capsys.readouterr()  # only what the failing command prints
    code = main(["select", "--experiment", experiment, "--model-name", model])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert "MLFLOW_TRACKING_URI" in err and f"{USER}='admin'" in err and server.url in err
    assert wrong not in err and server.password not in err

    # Serving resolves the champion through the same login check.
    with pytest.raises(TrackingError, match=f"rejected the login of {USER}='admin'"):
        registry_version(f"models:/{model}@champion")

    monkeypatch.setenv(PASSWORD, server.password)
    assert admin.get_model_version_by_alias(model, "champion").run_id == best
    assert registry_version(f"models:/{model}@champion")["mlflow_run_id"] == best
