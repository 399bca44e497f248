"""``videollm package``: champion → BentoML model → Bento, built offline, then served."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import httpx
import mlflow
import pytest
import yaml
from bento_server import start_server, stop_server
from mlflow import MlflowClient
from packaging.requirements import Requirement

from videollm.serve import package as packaging

ROOT = Path(__file__).resolve().parents[2]
# Nothing can be fetched: a build that tried to lock or download packages would fail.
OFFLINE = {
    "PIP_NO_INDEX": "1",
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
}


def _register(checkpoint: Path, name: str) -> str:
    """Register ``checkpoint`` as a new version of ``name`` and make it the champion."""
    client = MlflowClient()
    with mlflow.start_run() as run:
        pass
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, source=str(checkpoint), run_id=run.info.run_id)
    client.set_registered_model_alias(name, "champion", version.version)
    return run.info.run_id


def _cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "videollm.cli.main", *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=300, cwd=cwd,
    )  # fmt: skip


def _printed(done: subprocess.CompletedProcess, prefix: str) -> str:
    return next(line.split()[-1] for line in done.stdout.splitlines() if line.startswith(prefix))


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """videollm as a regular (non-editable) install lays it out: the wheel, unpacked.

    Built from what the pipeline image copies before it installs and deletes its sources; run
    it with ``PYTHONPATH`` set to this folder and a working directory outside the repo.
    """
    root = tmp_path_factory.mktemp("installed")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src)
    for name in ("videollm", "components", "pipelines"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(root / "dist"), str(src)],
        check=True, capture_output=True, env={**os.environ, **OFFLINE},
    )  # fmt: skip
    [wheel] = (root / "dist").glob("videollm-*.whl")
    site = root / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def _bentoml(home: Path, *args: str) -> dict | list:
    bentoml = Path(sys.executable).parent / "bentoml"
    out = subprocess.run(
        [str(bentoml), *args, "-o", "json"], env={**os.environ, "BENTOML_HOME": str(home)},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


@pytest.mark.slow
def test_package_the_champion_offline_and_serve_the_bento(
    served_checkpoint, colour_data, installed, tmp_path
):
    run_id = _register(served_checkpoint, "packaged")
    home = tmp_path / "bentoml"  # outside the build context (the repo)
    done = _cli("package", "--model-uri", "models:/packaged@champion",
                env={"BENTOML_HOME": str(home), **OFFLINE})  # fmt: skip
    assert done.returncode == 0, done.stderr
    bento_tag = _printed(done, "Bento:")

    model = _bentoml(home, "models", "get", _printed(done, "BentoML model:"))
    assert model["labels"]["mlflow_model"] == "packaged"
    assert model["labels"]["mlflow_version"] == "1"
    assert model["labels"]["mlflow_run_id"] == run_id
    assert "mlflow_source" not in model["labels"]  # storage locations stay private

    # The base LLM (a local folder) travels inside the model, referenced by a ./ path.
    [model_dir] = (home / "models" / "videollm").glob("*/checkpoint")
    config = json.loads((model_dir / "videollm_config.json").read_text())
    assert config["model"]["llm"] == "./base/llm"
    assert (model_dir / "base" / "llm" / "config.json").is_file()

    bento = _bentoml(home, "get", bento_tag)
    assert bento["labels"]["mlflow_version"] == "1"
    assert [m["tag"] for m in bento["models"]] == [f"videollm:{model['version']}"]
    bento_dir = home / "bentos" / Path(bento_tag.replace(":", "/"))
    assert (bento_dir / "src" / "videollm" / "serve" / "service.py").is_file()
    # Unlocked: the requirements are our pins as written, not a resolver's output.
    requirements = (bento_dir / "env" / "python" / "requirements.txt").read_text()
    assert "torch==2.13.0" in requirements and "transformers==5.23.0" in requirements
    assert (bento_dir / "env" / "docker" / "Dockerfile").is_file()

    # A new champion, packaged as the pipeline image does it: from an installed (non-editable)
    # videollm, no source checkout. It is now the newest model in the store.
    _register(served_checkpoint, "packaged")
    env = {"BENTOML_HOME": str(home), "PYTHONPATH": str(installed), **OFFLINE}
    again = _cli("package", "--model-uri", "models:/packaged@champion", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    newer_tag, newer_model = _printed(again, "Bento:"), _printed(again, "BentoML model:")
    assert newer_model != f"videollm:{model['version']}"
    newer = _bentoml(home, "get", newer_tag)
    assert newer["labels"]["mlflow_version"] == "2"
    assert [m["tag"] for m in newer["models"]] == [newer_model]
    newer_dir = home / "bentos" / Path(newer_tag.replace(":", "/"))
    assert (newer_dir / "src" / "videollm" / "serve" / "service.py").is_file()

    # The first Bento still serves its own champion (version 1), not the newest model.
    env = {"BENTOML_HOME": str(home), "VIDEOLLM_CHECKPOINT": "", "VIDEOLLM_MODEL_URI": ""}
    server = start_server(tmp_path, env, target=bento_tag)
    try:
        video = sorted(colour_data["videos"].glob("red*.mp4"))[0]
        response = httpx.post(
            f"{server.url}/chat",
            data={"question": "What colour is the video?", "max_new_tokens": "8"},
            files={"video": (video.name, video.read_bytes(), "video/mp4")},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        assert response.json()["answer"] == "red"
        assert response.json()["model_version"] == "packaged/1"
    finally:
        stop_server(server)


def test_package_needs_a_model(tmp_path):
    done = _cli("package", env={"BENTOML_HOME": str(tmp_path)})
    assert done.returncode == 1
    assert "exactly one of --checkpoint or --model-uri" in done.stderr


def test_the_bentofile_and_build_context_come_with_the_package(installed, tmp_path):
    # Editable (this checkout): the context is the repo root, the folder holding videollm/.
    assert (packaging.source_root() / "videollm" / "serve" / "package.py").samefile(
        packaging.__file__
    )
    # Installed: the bentofile is package data and the context is site-packages.
    script = "from videollm.serve import package as p; print(p.source_root(), p.BENTOFILE)"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(installed)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ctx, bentofile = map(Path, done.stdout.split())
    assert ctx == installed
    assert bentofile == installed / "videollm" / "serve" / "bentofile.yaml"
    assert bentofile.read_text() == packaging.BENTOFILE.read_text()


def test_bentofile_pins_match_the_project():
    bentofile = yaml.safe_load(packaging.BENTOFILE.read_text())
    assert bentofile["python"]["lock_packages"] is False
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    # Same package, same version; extras may differ (the project's mlflow[auth] is for the
    # tracking server, which a Bento does not run).
    pins = {r.name: r.specifier for r in map(Requirement, project)}
    for spec in bentofile["python"]["packages"]:
        req = Requirement(spec)
        assert pins.get(req.name) == req.specifier, f"{spec} differs from pyproject.toml"
