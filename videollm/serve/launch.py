"""``videollm serve``: resolve what to serve, then run ``bentoml serve`` on it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from videollm.errors import VideoLLMError

logger = logging.getLogger(__name__)

SERVICE = "videollm.serve.service:VideoLLMService"


def resolve_checkpoint(checkpoint: str | None = None, model_uri: str | None = None) -> Path:
    """A local checkpoint folder from a path, an ``s3://`` URI or ``models:/NAME@ALIAS``.

    A registry URI is resolved through MLflow (``MLFLOW_TRACKING_URI``) to the model version's
    source, which is then staged locally like any other URI.
    """
    from videollm.steps import stage_in

    if bool(checkpoint) == bool(model_uri):
        raise VideoLLMError("give exactly one of --checkpoint or --model-uri")
    if model_uri:
        checkpoint = registry_source(model_uri)
    assert checkpoint is not None
    return stage_in(checkpoint)


def registry_source(model_uri: str) -> str:
    """The source of ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if not model_uri.startswith("models:/"):
        raise VideoLLMError(f"--model-uri {model_uri!r} must look like models:/NAME@ALIAS")
    ref = model_uri[len("models:/") :]
    client = MlflowClient()
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            version = client.get_model_version_by_alias(name, alias)
        else:
            name, number = ref.rsplit("/", 1)
            version = client.get_model_version(name, number)
    except MlflowException as err:
        raise VideoLLMError(f"cannot resolve {model_uri}: {err.message}") from err
    logger.info("%s is version %s of %s: %s", model_uri, version.version, name, version.source)
    return version.source


def serve(checkpoint: Path, host: str = "0.0.0.0", port: int = 3000) -> int:
    """Run the BentoML service on ``checkpoint`` until interrupted; returns its exit code."""
    env = {**os.environ, "VIDEOLLM_CHECKPOINT": str(Path(checkpoint).resolve())}
    bentoml = Path(sys.executable).parent / "bentoml"
    cmd = [str(bentoml), "serve", SERVICE, "--host", host, "--port", str(port)]
    logger.info("serving %s on http://%s:%d", checkpoint, host, port)
    return subprocess.call(cmd, env=env)
