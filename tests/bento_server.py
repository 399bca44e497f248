"""Start and stop real ``bentoml serve`` processes (by PID) for the serving tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

TOKEN = "test-token-123"


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


SERVICE = "videollm.serve.service:VideoLLMService"


def start_server(
    root: Path, env: dict[str, str], wait_ready: bool = True, target: str = SERVICE
) -> Server:
    """Start ``target`` (the service, or a Bento tag); wait until it answers (and is ready)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    bentoml = Path(sys.executable).parent / "bentoml"
    log = root / f"serve-{port}.log"
    proc = subprocess.Popen(
        [str(bentoml), "serve", target, "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "BENTOML_HOME": str(root / "bentoml"), **env},
        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    target = "/readyz" if wait_ready else "/livez"
    while _status(url + target) != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"bentoml serve did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    return Server(url, proc, log)


def stop_server(server: Server) -> None:
    os.killpg(server.proc.pid, signal.SIGTERM)
    try:
        server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
