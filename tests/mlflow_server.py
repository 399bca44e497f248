"""Pytest plugin: a real ``mlflow server`` process for tracking and registry tests.

Registered from ``tests/conftest.py`` through ``pytest_plugins``. The server runs on a free
localhost port with a fresh SQLite store and a local artifact destination, and is stopped by
PID at the end of the session. ``mlflow_auth_server`` runs one with MLflow's basic-auth app
(``--app-name basic-auth``), configured the way the Helm chart configures it.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

log = logging.getLogger(__name__)

# Cold start on 2 cores is ~10-20 s (imports, DB migrations); give it head room.
START_TIMEOUT_S = 90.0

# The basic-auth app's config (MLFLOW_AUTH_CONFIG_PATH), as the chart writes it. The admin
# password comes from MLFLOW_AUTH_ADMIN_PASSWORD, never from the file. Without the credential
# cache every request re-hashes the password (PBKDF2, ~1 s of CPU on a small core).
BASIC_AUTH_INI = """\
[mlflow]
default_permission = READ
database_uri = {database_uri}
admin_username = {admin_username}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = 60
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mlflow_executable() -> list[str]:
    # Prefer the script next to the running interpreter so the server uses the same venv.
    script = Path(sys.executable).with_name("mlflow")
    if script.exists():
        return [str(script)]
    found = shutil.which("mlflow")
    if found:
        return [found]
    return [sys.executable, "-m", "mlflow"]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


@contextmanager
def running_mlflow_server(
    root: Path,
    artifacts_destination: str,
    env: dict[str, str] | None = None,
    app_name: str | None = None,
) -> Iterator[str]:
    """Run ``mlflow server`` (SQLite backend) until the block ends; yield its base URL.

    Args:
        root: Folder for the database and the server log.
        artifacts_destination: Where the server stores proxied artifacts (folder or s3://).
        env: Extra environment (e.g. ``MLFLOW_S3_ENDPOINT_URL`` and S3 keys).
        app_name: ``--app-name`` (e.g. ``basic-auth``); ``None`` for the plain server.
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        *_mlflow_executable(),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        artifacts_destination,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        *(["--app-name", app_name] if app_name else []),
    ]
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # MLflow's job runner (GenAI jobs, unused here) ignores SIGTERM: with it each server took
    # 15 s to stop and was then killed; without it, it stops cleanly in a few seconds.
    server_env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    server_env.update(env or {})
    log_file = (root / "server.log").open("wb")
    # New session so terminate() reaches the server and not the test process group.
    proc = subprocess.Popen(
        cmd, stdout=log_file, stderr=subprocess.STDOUT, env=server_env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if proc.poll() is not None:
                text = (root / "server.log").read_text(errors="replace")[-4000:]
                raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{text}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server not healthy at {url} after {START_TIMEOUT_S}s")
            time.sleep(0.3)
        log.info("mlflow server up at %s (pid %d)", url, proc.pid)
        yield url
    finally:
        _stop(proc)
        log_file.close()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A session ``mlflow server`` with local artifacts; yields its base URL."""
    root = tmp_path_factory.mktemp("mlflow_server")
    with running_mlflow_server(root, str(root / "artifacts")) as url:
        yield url


@pytest.fixture(scope="session")
def mlflow_s3_server(tmp_path_factory: pytest.TempPathFactory, s3_server: Any) -> Iterator[str]:
    """An ``mlflow server`` that proxies artifacts to the S3 test server (bucket ``mlflow``)."""
    root = tmp_path_factory.mktemp("mlflow_s3_server")
    env = {k: v for k, v in s3_server.env().items() if not k.startswith("VIDEOLLM_")}
    env["MLFLOW_S3_ENDPOINT_URL"] = s3_server.env()["VIDEOLLM_S3_ENDPOINT"]
    with running_mlflow_server(root, "s3://mlflow/artifacts", env) as url:
        yield url


@pytest.fixture
def mlflow_env(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point MLflow at the session server with a fresh experiment name; yield the name."""
    for key in ("MLFLOW_RUN_ID", "VIDEOLLM_PARENT_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    name = f"test-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", name)
    return name


@dataclass(frozen=True)
class AuthServer:
    """A running basic-auth ``mlflow server`` and its admin login."""

    url: str
    username: str
    password: str


@pytest.fixture(scope="session")
def mlflow_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """A session ``mlflow server --app-name basic-auth`` with a generated admin password."""
    root = tmp_path_factory.mktemp("mlflow_auth_server")
    ini = root / "basic_auth.ini"
    database_uri = f"sqlite:///{root / 'basic_auth.db'}"
    ini.write_text(BASIC_AUTH_INI.format(database_uri=database_uri, admin_username="admin"))
    password = secrets.token_urlsafe(18)
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
    }
    with running_mlflow_server(root, str(root / "artifacts"), env, app_name="basic-auth") as url:
        yield AuthServer(url, "admin", password)
