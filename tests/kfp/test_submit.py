"""``videollm pipeline submit`` against a stand-in KFP API server on a real port.

No KFP server can run here, so a small HTTP server answers the v2beta1 calls the KFP SDK makes
with recorded-shape responses and keeps what it was sent; the SDK, the compiled pipeline and
the CLI run for real.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from videollm.cluster import ISTIO_INJECT, KUEUE_QUEUE_LABEL
from videollm.errors import EXIT_CONFIG
from videollm.kfp.runner import get_pipeline, parse_params, spec_tasks, submit

REPLIES = {
    ("GET", "/apis/v2beta1/healthz"): {"commit_sha": "abc", "tag_name": "2.4.0"},
    ("GET", "/apis/v2beta1/experiments"): {"experiments": [], "total_size": 0},
    ("POST", "/apis/v2beta1/experiments"): {"experiment_id": "exp-7", "display_name": "vl"},
    ("POST", "/apis/v2beta1/runs"): {"run_id": "run-42", "display_name": "try-1"},
}


@pytest.fixture
def kfp_api() -> Iterator[tuple[str, list[tuple[str, str, dict]]]]:
    received: list[tuple[str, str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            path = self.path.split("?")[0]
            received.append((self.command, path, body))
            reply = json.dumps(REPLIES.get((self.command, path), {})).encode()
            self.send_response(200 if (self.command, path) in REPLIES else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()


def test_submit_sends_the_compiled_pipeline_and_prints_the_run_link(kfp_api):
    host, received = kfp_api
    cmd = [
        sys.executable, "-m", "videollm.cli.main", "pipeline", "submit", "--host", host,
        "--experiment", "vl", "--run-name", "try-1", "--param", "videos_uri=s3://d/videos",
        "--param", "annotations_uri=s3://d/qa.json", "--param", "num_workers=2",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"link:       {host}/#/runs/details/run-42" in done.stdout
    assert "experiment: vl" in done.stdout and "try-1 run-42" in done.stdout

    [run] = [body for method, path, body in received if path == "/apis/v2beta1/runs"]
    assert run["experiment_id"] == "exp-7" and run["display_name"] == "try-1"
    spec = run["pipeline_spec"]["pipeline_spec"]
    assert spec["pipelineInfo"]["name"] == "videollm-finetune"
    params = run["runtime_config"]["parameters"]
    assert params["videos_uri"] == "s3://d/videos" and params["num_workers"] == 2


def _cached(spec: dict) -> list[str]:
    """Tasks with caching on, anywhere in a PipelineSpec."""
    return [
        n for n, t in spec_tasks(spec).items() if t.get("cachingOptions", {}).get("enableCache")
    ]


def test_submit_names_the_run_and_can_turn_caching_off(kfp_api):
    host, received = kfp_api
    base = [
        sys.executable, "-m", "videollm.cli.main", "pipeline", "submit", "--host", host,
        "--param", "videos_uri=s3://d/videos", "--param", "annotations_uri=s3://d/qa.json",
    ]  # fmt: skip
    for extra in ([], ["--no-cache"]):
        done = subprocess.run(base + extra, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    runs = [body for method, path, body in received if path == "/apis/v2beta1/runs"]
    assert len(runs) == 2
    name = runs[-1]["display_name"]  # the name the last submit printed is the one it sent
    assert name.startswith("finetune 20") and f"run:        {name} run-42" in done.stdout
    assert {"extract", "convert"} <= set(_cached(runs[0]["pipeline_spec"]["pipeline_spec"]))
    assert _cached(runs[1]["pipeline_spec"]["pipeline_spec"]) == []


def test_submit_refuses_a_bad_parameter_before_calling_the_server(kfp_api):
    host, received = kfp_api
    cmd = [sys.executable, "-m", "videollm.cli.main", "pipeline", "submit", "--host", host,
           "--param", "videos_uri=x", "--param", "annotations_uri=y",
           "--param", "num_shards=lots"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_CONFIG
    assert "num_shards='lots': not a valid Integer" in done.stderr
    assert received == []


def test_submit_writes_the_literal_only_pod_settings_into_the_package(kfp_api):
    host, received = kfp_api
    items = ["videos_uri=s3://d/videos", "annotations_uri=s3://d/qa.json"]
    items += ["kueue_queue=team-a", "hf_cache_pvc="]
    submit("finetune", parse_params(get_pipeline("finetune"), items), host)  # in-process: fast
    [run] = [body for method, path, body in received if path == "/apis/v2beta1/runs"]
    platform = run["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]
    executors = platform["deploymentSpec"]["executors"]
    extract, evaluate = executors["exec-extract"], executors["exec-evaluate"]
    assert extract["podMetadata"]["labels"][KUEUE_QUEUE_LABEL] == "team-a"
    assert KUEUE_QUEUE_LABEL not in evaluate["podMetadata"]["labels"]
    assert "pvcMount" not in extract and "pvcMount" not in evaluate  # KFP refuses an empty name
    assert evaluate["podMetadata"]["annotations"] == {ISTIO_INJECT: "false"}  # Istio still out
    params = run["runtime_config"]["parameters"]
    assert params["kueue_queue"] == "team-a" and params["hf_cache_pvc"] == ""  # the job gets them
