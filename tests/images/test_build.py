"""The CPU images built from scratch here and run for real: slow, so opt-in (`make image-test`).

``make images-cpu`` builds base-cpu, pipeline and serve with buildah on a Debian bootstrapped
locally (no Docker engine, no registry; see buildah.py). Then they run the way a pod with
``readOnlyRootFilesystem: true`` runs them: the image's own USER, and writable tmpfs only at
/tmp, ~/.cache and the serve image's BENTOML_HOME, like the chart's emptyDirs. The pipeline
image runs ``videollm demo``; the serve image's CMD serves the demo's checkpoint and answers
``/readyz`` and ``/chat``.

Needs root, buildah and debootstrap (``apt-get install buildah debootstrap``) and
``VIDEOLLM_IMAGE_TESTS=1``. Build storage (the layer cache, kept between runs) lives in
``VIDEOLLM_BUILDAH_DIR`` (default /var/tmp/videollm-buildah), with the storage driver
``VIDEOLLM_BUILDAH_DRIVER`` (default overlay; vfs where overlay mounts are refused); a folder
holding torch's CPU wheel, ``VIDEOLLM_TORCH_WHEELS`` (default /opt/wheels), replaces
PyTorch's CPU index.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from buildah import DEBIAN_IMAGE, Buildah, missing_tools, run_read_only, stop

from videollm.features.store import load_features
from videollm.images import CPU_TAG, image
from videollm.model.model_config import CONFIG_FILE, WEIGHTS_FILE

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("VIDEOLLM_BUILDAH_DIR", "/var/tmp/videollm-buildah"))
DRIVER = os.environ.get("VIDEOLLM_BUILDAH_DRIVER", "overlay")
TORCH_WHEELS = Path(os.environ.get("VIDEOLLM_TORCH_WHEELS", "/opt/wheels"))
IMAGES = {
    "base-cpu": image("base-cpu"),
    "pipeline": image("pipeline", tag=CPU_TAG),
    "serve": image("serve", tag=CPU_TAG),
}
#: Where the containers may write: the chart's emptyDirs.
WRITABLE = ("/tmp", "/home/videollm/.cache")
USER_HOME = "/home/videollm"


def _skip_reason() -> str | None:
    if os.environ.get("VIDEOLLM_IMAGE_TESTS") != "1":
        return "builds the images from scratch (slow): opt in with VIDEOLLM_IMAGE_TESTS=1"
    if missing := missing_tools():
        return f"needs {', '.join(missing)}: apt-get install buildah debootstrap"
    if os.geteuid() != 0:
        return "needs root (debootstrap, buildah's chroot isolation, mount namespaces)"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


@pytest.fixture(scope="module")
def buildah() -> Buildah:
    """Storage with the three CPU images, built by ``make images-cpu``."""
    tool = Buildah(STATE, DRIVER)
    started = time.monotonic()
    if not tool.exists(DEBIAN_IMAGE):
        tool.bootstrap_debian()
        logger.info("debootstrap image: %.0f s", time.monotonic() - started)
    flags = ["--format", "docker", "--layers", "--pull=never", "--isolation", "chroot"]
    make = [
        "make", "images-cpu", f"PYTHON={sys.executable}",
        f"DOCKER={' '.join(['buildah', *tool.global_flags])}",
        f"BUILD_FLAGS={' '.join(flags)}", f"DEBIAN_IMAGE={DEBIAN_IMAGE}",
    ]  # fmt: skip
    if list(TORCH_WHEELS.glob("torch-*+cpu-cp311-*.whl")):
        make.append(f"TORCH_WHEELS={TORCH_WHEELS}")
    built = time.monotonic()
    proc = subprocess.run(make, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    logger.info("make images-cpu: %.0f s", time.monotonic() - built)
    for ref in IMAGES.values():
        logger.info("%s: %s", ref, tool.size(ref))
    return tool


def _probe(tool: Buildah, user: str | None = None) -> str:
    """Output of write attempts inside the pipeline image, as its user or as ``user``."""
    script = (
        "echo uid=$(id -u) gid=$(id -g); "
        f"for d in / /opt/venv {USER_HOME} {' '.join(WRITABLE)}; do "
        'touch "${d%/}/.probe" 2>&1 && echo "wrote $d"; done; true'
    )
    ref = IMAGES["pipeline"]
    config = tool.config(ref)
    if user:
        config = {**config, "User": user}
    with tool.rootfs(ref) as rootfs:
        proc = run_read_only(
            rootfs, config, ["sh", "-c", script], writable=WRITABLE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            out, _ = proc.communicate(timeout=120)
        finally:
            stop(proc)
    assert proc.returncode == 0, out
    return out


def test_the_pipeline_image_runs_as_uid_1000_on_a_read_only_root(buildah):
    as_image_user = _probe(buildah)
    assert "uid=1000 gid=1000" in as_image_user
    # Read-only, not merely not ours: the home folder is uid 1000's, yet cannot be written.
    assert f"touch: cannot touch '{USER_HOME}/.probe': Read-only file system" in as_image_user
    wrote = {line.split()[1] for line in as_image_user.splitlines() if line.startswith("wrote")}
    assert wrote == set(WRITABLE)
    # Even root cannot write the image's files in this setup.
    as_root = _probe(buildah, user="0:0")
    assert "uid=0" in as_root
    assert "touch: cannot touch '/.probe': Read-only file system" in as_root
    assert "touch: cannot touch '/opt/venv/.probe': Read-only file system" in as_root


@pytest.fixture(scope="module")
def demo(buildah, tmp_path_factory) -> tuple[Path, dict]:
    """``videollm demo`` run in the pipeline image: its output folder here and its summary."""
    out = tmp_path_factory.mktemp("image-demo")
    os.chown(out, 1000, 1000)  # the image's user writes there, like a volume with fsGroup
    ref = IMAGES["pipeline"]
    started = time.monotonic()
    with buildah.rootfs(ref) as rootfs:
        proc = run_read_only(
            rootfs, buildah.config(ref), ["videollm", "demo", "--out", "/data/demo"],
            writable=WRITABLE, binds={"/data": out},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            stdout, stderr = proc.communicate(timeout=1800)
        finally:
            stop(proc)
    logger.info("videollm demo in the pipeline image: %.0f s", time.monotonic() - started)
    assert proc.returncode == 0, stdout[-4000:] + stderr[-6000:]
    # The summary is the JSON document the command prints last ("models" is its first key);
    # DeepSpeed's logger writes to stdout too, with no line break before it.
    return out, json.loads(stdout[stdout.rindex('{\n  "models"') :])


def test_videollm_demo_runs_in_the_pipeline_image(demo):
    out, summary = demo
    assert summary["checkpoint"].startswith("/data/demo/")
    checkpoint = out / Path(summary["checkpoint"]).relative_to("/data")
    assert (checkpoint / CONFIG_FILE).is_file() and (checkpoint / WEIGHTS_FILE).is_file()
    assert summary["champion"].startswith("models:/videollm@champion ")
    assert summary["chat"]["answer"].strip()
    assert (out / "demo" / "mlflow.db").is_file()
    # The image's FFmpeg libraries load: torchcodec, the first choice, decoded every video.
    features = out / Path(summary["features"]).relative_to("/data")
    files = sorted(features.rglob("*.safetensors"))
    assert files and {load_features(f)[1]["decoder"] for f in files} == {"torchcodec"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_serve_image_serves_the_demo_checkpoint(buildah, demo, tmp_path):
    out, summary = demo
    ref = IMAGES["serve"]
    config = buildah.config(ref)
    cmd = list(config["Cmd"])
    assert cmd[:3] == ["bentoml", "serve", "videollm.serve.service:VideoLLMService"]
    # The image's CMD, on a free port of this machine's loopback (the network is the host's).
    port = _free_port()
    cmd[cmd.index("--host") + 1] = "127.0.0.1"
    cmd[cmd.index("--port") + 1] = str(port)
    # BentoML writes to its home at start: the chart mounts an emptyDir there as well.
    bentoml_home = dict(v.split("=", 1) for v in config["Env"])["BENTOML_HOME"]
    log = tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with buildah.rootfs(ref) as rootfs, log.open("w") as sink:
        proc = run_read_only(
            rootfs, config, cmd, env={"VIDEOLLM_CHECKPOINT": summary["checkpoint"]},
            writable=(*WRITABLE, bentoml_home), read_only_binds={"/data": out},
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            ready = None
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    ready = httpx.get(f"{url}/readyz", timeout=5)
                    if ready.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(1)
            assert ready is not None and ready.status_code == 200, log.read_text()[-6000:]
            video = out / Path(summary["chat"]["video"]).relative_to("/data")
            with video.open("rb") as f:
                reply = httpx.post(
                    f"{url}/chat",
                    data={"question": summary["chat"]["question"]},
                    files={"video": (video.name, f, "video/mp4")},
                    timeout=120,
                )
            assert reply.status_code == 200, reply.text + log.read_text()[-4000:]
            assert reply.json()["answer"].strip()
        finally:
            stop(proc)
