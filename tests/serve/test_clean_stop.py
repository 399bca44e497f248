"""``videollm serve`` started as a user would, stopped with ``kill PID``: nothing is left behind.

Both servers start together (one start is ~15-30 s here); each test then waits for its own, so
the second is usually ready by the time its test runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from bento_server import _free_port, _status

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _refused(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, port)) != 0


def _other_ipv4() -> str | None:
    """A non-loopback IPv4 address of this machine, if it has one."""
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family == socket.AF_INET and not addr.address.startswith("127."):
                return addr.address
    return None


@pytest.fixture(scope="module")
def launched(served_checkpoint, tmp_path_factory) -> Iterator[dict[int, tuple]]:
    """One ``videollm serve --checkpoint CKPT --port P`` per signal, with no --host."""
    root = tmp_path_factory.mktemp("clean-stop")
    started = {}
    for sig in SIGNALS:
        port = _free_port()
        log = root / f"serve-{sig.name}.log"
        cmd = [sys.executable, "-m", "videollm.cli.main", "serve"]
        proc = subprocess.Popen(
            [*cmd, "--checkpoint", str(served_checkpoint), "--port", str(port)],
            env={**os.environ, "BENTOML_HOME": str(root / f"bentoml-{sig.name}")},
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,  # only so that a failed test can clean up by group
        )  # fmt: skip
        started[sig] = (proc, port, log)
    yield started
    for proc, _, _ in started.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_ready(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 120
    while _status(f"http://127.0.0.1:{port}/readyz") != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"videollm serve did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_a_signal_to_the_pid_stops_every_process_and_closes_the_port(launched, sig):
    proc, port, log = launched[sig]
    _wait_ready(proc, port, log)
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    assert len(tree) >= 2, "expected bentoml serve and its worker"
    listening = {
        c.laddr
        for p in tree
        for c in p.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }
    assert listening and {a.ip for a in listening} == {"127.0.0.1"}, listening
    other = _other_ipv4()
    if other is not None:
        assert _refused(other, port), f"reachable on {other}"

    os.kill(proc.pid, sig)  # the PID alone, as `kill PID` does: not its process group
    proc.wait(timeout=20)
    _, alive = psutil.wait_procs(tree[1:], timeout=20)
    assert not alive, f"left running after {sig.name}: {alive}"
    assert _refused("127.0.0.1", port)
