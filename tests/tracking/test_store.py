"""A new local SQLite store opened by several processes at once (torchrun ranks, pipeline
tasks): every one of them gets a working store."""

from __future__ import annotations

import subprocess
import sys
import time

from mlflow import MlflowClient

# Each process waits for the others, then opens the store and records a run in it.
_OPEN_AND_LOG = """
import sys, time
start = float(sys.argv[1])
time.sleep(max(0.0, start - time.time()))
from videollm.tracking import step_run
with step_run("train", {"rank": sys.argv[2]}, experiment="race"):
    pass
"""


def test_processes_opening_a_new_sqlite_store_at_once_all_succeed(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    start = time.time() + 8  # every process has imported mlflow by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AND_LOG, str(start), str(rank)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(4)
    ]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for code, err in results:
        assert code == 0, err[-2000:]
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("race").experiment_id])
    assert sorted(r.data.params["rank"] for r in runs) == ["0", "1", "2", "3"]
