"""What ``videollm serve`` serves, and becoming ``bentoml serve`` on it.

A model can come from a checkpoint path or ``s3://`` URI, an MLflow registry URI
(``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``), or a BentoML model packaged by
``videollm package`` (the default inside a Bento).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from videollm.errors import VideoLLMError

logger = logging.getLogger(__name__)

SERVICE = "videollm.serve.service:VideoLLMService"
BENTO_MODEL = "videollm"  # the BentoML model name ``videollm package`` writes


@dataclass(frozen=True)
class ModelSource:
    """A local checkpoint folder and where it came from.

    Attributes:
        path: The checkpoint folder (config + trained weights).
        version: What ``/chat`` reports as ``model_version``.
        labels: Provenance: MLflow model name/version/run id when known.
    """

    path: Path
    version: str
    labels: dict[str, str] = field(default_factory=dict)


def resolve_checkpoint(checkpoint: str | None = None, model_uri: str | None = None) -> Path:
    """A local checkpoint folder from a path or ``s3://`` URI, or ``models:/NAME@ALIAS``."""
    return locate_model(checkpoint, model_uri).path


def locate_model(checkpoint: str | None = None, model_uri: str | None = None) -> ModelSource:
    """Resolve exactly one of ``checkpoint`` or ``model_uri`` to a local :class:`ModelSource`."""
    from videollm.storage.staging import stage_in
    from videollm.tracking.lookup import registry_version

    if bool(checkpoint) == bool(model_uri):
        raise VideoLLMError("give exactly one of --checkpoint or --model-uri")
    if model_uri:
        labels = registry_version(model_uri)
        path = stage_in(labels["mlflow_source"])
        return ModelSource(path, f"{labels['mlflow_model']}/{labels['mlflow_version']}", labels)
    assert checkpoint is not None
    path = stage_in(checkpoint)
    return ModelSource(path, Path(checkpoint.rstrip("/")).name)


def bento_model(tag: str = BENTO_MODEL) -> ModelSource:
    """The checkpoint inside a BentoML model written by ``videollm package``.

    Inside a served Bento, ``videollm`` is the alias its bentofile gives the model: BentoML maps
    it to the exact version the Bento recorded when it was built, so an older Bento serves its
    own model, not the newest one in the store. Outside a Bento it is the newest model.
    """
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        model = bentoml.models.get(tag)
    except NotFound as err:
        raise VideoLLMError(
            f"no BentoML model {tag!r}: run `videollm package` first, or set "
            "VIDEOLLM_CHECKPOINT / VIDEOLLM_MODEL_URI"
        ) from err
    logger.info("BentoML model %s is %s", tag, model.tag)
    labels = {k: str(v) for k, v in model.info.labels.items()}
    version = (
        f"{labels['mlflow_model']}/{labels['mlflow_version']}"
        if "mlflow_version" in labels
        else str(model.tag)
    )
    return ModelSource(Path(model.path) / "checkpoint", version, labels)


def serve(
    checkpoint: Path | None = None,
    bento: str | None = None,
    model_uri: str | None = None,
    host: str = "127.0.0.1",
    port: int = 3000,
) -> NoReturn:
    """Become ``bentoml serve`` on a checkpoint folder, a registry URI or a Bento.

    A registry URI is handed to the service, which resolves it itself and reports the registry
    version (``NAME/VERSION``) as ``model_version``. The checks run first, so a bad source fails
    here with its reason; then the process becomes ``bentoml serve`` (same PID), so ``kill PID``
    or Ctrl-C reach the server itself, which stops its workers and frees the port: a wrapper
    process would leave them running. ``host`` is loopback unless asked otherwise; the images and
    the chart run ``bentoml serve --host 0.0.0.0`` themselves.
    """
    env = dict(os.environ)
    if checkpoint is not None:
        env["VIDEOLLM_CHECKPOINT"] = str(Path(checkpoint).resolve())
    if model_uri is not None:
        from videollm.tracking.lookup import registry_version

        registry_version(model_uri)  # fail here, with the reason, if it does not resolve
        env["VIDEOLLM_MODEL_URI"] = model_uri
    bentoml = str(Path(sys.executable).parent / "bentoml")
    argv = [bentoml, "serve", bento or SERVICE, "--host", host, "--port", str(port)]
    logger.info("serving %s on http://%s:%d", checkpoint or model_uri or bento, host, port)
    # exec does not flush Python's buffers: what was logged or printed so far would be lost.
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.execve(bentoml, argv, env)
