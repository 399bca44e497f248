"""The BentoML service over real HTTP: answers, concurrency, readiness, open health endpoints.

Bad requests, one table row each, are in test_bad_requests.py.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from bento_server import TOKEN, start_server, stop_server
from safetensors.torch import load_file
from serve_helpers import AUTH, QUESTION, chat, counters, error_of, turns, video_of

HERE = Path(__file__).parent  # gated_service.py lives here


@pytest.mark.slow
def test_chat_answers_with_timings(server, colour_data):
    for colour in ("red", "green", "blue"):
        response = chat(server, video_of(colour_data, colour))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["answer"] == colour
        assert body["model_version"] == "ckpt"
        assert set(body["timings"]) == {"decode_ms", "encode_ms", "generate_ms"}
        assert all(v > 0 for v in body["timings"].values())


@pytest.mark.slow
def test_bentoml_client_chat_and_features(server, colour_data):
    import bentoml

    with bentoml.SyncHTTPClient(server.url, token=TOKEN, timeout=60) as client:
        body = client.chat(video=video_of(colour_data, "blue"), question=QUESTION, max_new_tokens=8)
        assert body["answer"] == "blue"
        feats = next(p for p in sorted(colour_data["features"].glob("green*.safetensors")))
        body = client.chat_features(features=feats, question=QUESTION, max_new_tokens=8)
        assert body["answer"] == "green"


@pytest.mark.slow
def test_extract_returns_the_same_features_as_offline(server, colour_data, tmp_path):
    video = video_of(colour_data, "red")
    files = {"video": (video.name, video.read_bytes(), "video/mp4")}
    response = httpx.post(f"{server.url}/extract", files=files, headers=AUTH, timeout=60)
    assert response.status_code == 200
    (tmp_path / "f.safetensors").write_bytes(response.content)
    served = load_file(tmp_path / "f.safetensors")["features"]
    offline = load_file(colour_data["features"] / f"{video.stem}.safetensors")["features"]
    assert served.shape == offline.shape
    assert (served.float() - offline.float()).abs().max() < 1e-2


@pytest.mark.slow
def test_history_and_default_max_new_tokens(server, colour_data):
    good = video_of(colour_data, "green")
    # Left out, max_new_tokens is 128 lowered to the server's cap (32 here), not a 400.
    response = chat(server, good, max_new_tokens=None)
    assert response.status_code == 200, response.text
    assert response.json()["answer"] == "green"
    # With history, the video placeholder goes into the first human turn (none in the text).
    history = turns("What colour is the video?", "green")
    response = chat(server, good, history=history, question="And now?")
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["answer"], str)


@pytest.mark.slow
def test_path_like_filenames_never_escape_the_request_dir(server, colour_data, tmp_path):
    target = tmp_path / "escaped.mp4"
    response = chat(server, video_of(colour_data, "red"), name=f"../../../../{target}")
    assert response.status_code == 200
    assert not target.exists()


@pytest.mark.slow
def test_twenty_concurrent_requests_are_all_answered(server, colour_data):
    video = video_of(colour_data, "blue")
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: chat(server, video), range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert {r.json()["answer"] for r in responses} == {"blue"}


@pytest.mark.slow
def test_health_and_metrics_need_no_token(server):
    # Bad and missing tokens are rows of test_bad_requests.py.
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    assert httpx.get(f"{server.url}/livez").status_code == 200
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "videollm_requests_total" in metrics and "videollm_videos_decoded_total" in metrics


@pytest.mark.slow
def test_not_ready_until_a_model_appears_and_auth_off(tmp_path, served_checkpoint, colour_data):
    later = tmp_path / "registered-later"
    env = {"VIDEOLLM_CHECKPOINT": str(later), "VIDEOLLM_LOAD_RETRY_S": "1"}
    srv = start_server(tmp_path, env, wait_ready=False)
    try:
        assert httpx.get(f"{srv.url}/readyz").status_code == 503
        files = {"video": ("v.mp4", b"x", "video/mp4")}
        response = httpx.post(f"{srv.url}/chat", data={"question": "q"}, files=files, timeout=30)
        assert response.status_code == 503  # no token needed when VIDEOLLM_API_TOKEN is unset
        deadline = time.monotonic() + 30
        while "registered-later" not in srv.log.read_text():  # the log says what it waits for
            assert time.monotonic() < deadline, "the load failure was never logged"
            time.sleep(0.2)
        # The model shows up (e.g. the first pipeline run registers it): the server gets ready.
        shutil.copytree(served_checkpoint, later)
        deadline = time.monotonic() + 60
        while httpx.get(f"{srv.url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "never became ready"
            time.sleep(0.5)
        assert chat(srv, video_of(colour_data, "red")).json()["answer"] == "red"
    finally:
        stop_server(srv)


@pytest.mark.slow
def test_a_bad_request_does_not_wait_and_a_client_that_leaves_frees_its_row(
    tmp_path, served_checkpoint, colour_data
):
    """With the one batch row taken, cheap 400s still come back at once; a streaming client
    that disconnects gives its row up, so the next request is answered.

    The gated service holds the generation until the test opens the gate, so "while the long
    request is still running" is a fact, not a timing guess.
    """
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {
        "VIDEOLLM_CHECKPOINT": str(served_checkpoint),
        "VIDEOLLM_API_TOKEN": TOKEN,
        "VIDEOLLM_MAX_BATCH_SIZE": "1",
        "VIDEOLLM_TEST_GATE": str(gate),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    srv = start_server(tmp_path, env, target="gated_service:VideoLLMService")
    good = video_of(colour_data, "red")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            running = pool.submit(chat, srv, good)
            deadline = time.monotonic() + 60
            while not (gate / "generating").exists():
                assert time.monotonic() < deadline, "the long request never started generating"
                assert not running.done(), running.result().text
                time.sleep(0.05)
            bad = [
                (chat(srv, good, question=""), "question"),
                (chat(srv, good, temperature="-1"), "temperature"),
                (chat(srv, good, history=turns("hi")), "history"),
                (chat(srv, empty), "video"),
            ]
            assert not running.done()  # all four were answered while it generated
            for response, field in bad:
                assert response.status_code == 400, response.text
                assert error_of(response).startswith(field)
            (gate / "open").touch()
            assert running.result().json()["answer"] == "red"

        # A streaming client leaves while its request waits to generate.
        for flag in ("open", "generating"):
            (gate / flag).unlink()
        with httpx.stream(
            "POST",
            f"{srv.url}/chat",
            data={"question": QUESTION, "stream": "true", "max_new_tokens": "32"},
            headers=AUTH,
            timeout=60,
            files={"video": (good.name, good.read_bytes(), "video/mp4")},
        ) as s:
            assert s.status_code == 200
            _wait_for(gate / "generating")
        _wait_for(gate / "cancelled")  # the server saw the client go
        (gate / "open").touch()
        assert chat(srv, good).json()["answer"] == "red"  # the only row was free again
        cancelled = counters(srv, "videollm_generations_cancelled_total")
        assert cancelled == {(): 1.0}
    finally:
        (gate / "open").touch()
        stop_server(srv)


def _wait_for(path: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)
