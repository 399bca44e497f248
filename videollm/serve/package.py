"""``videollm package``: a checkpoint (or the MLflow champion) → a BentoML model → a Bento.

The BentoML model holds the checkpoint (trained weights + config). A base LLM or encoder that
the config names by a local path is copied in too and the copy's config points at it with a
``./`` path, so the Bento runs anywhere; one named by a Hugging Face id stays a reference (the
serving machine loads it from its HF cache or the Hub). MLflow's model name, version and run id
go into the model's labels, so ``bentoml models list`` says which champion a Bento holds.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from videollm.errors import VideoLLMError
from videollm.model.model_config import CheckpointConfig
from videollm.serve.launch import BENTO_MODEL, ModelSource, locate_model

logger = logging.getLogger(__name__)

# Package data next to this module, so it is there however videollm was installed.
BENTOFILE = Path(__file__).with_name("bentofile.yaml")


@dataclass(frozen=True)
class Packaged:
    """What ``package`` made.

    Attributes:
        model_tag: The BentoML model, e.g. ``videollm:abc123``.
        bento_tag: The Bento, or ``None`` when only the model was made.
        labels: The provenance labels on both.
    """

    model_tag: str
    bento_tag: str | None
    labels: dict[str, str]


def source_root() -> Path:
    """The Bento's build context: the folder that holds the imported ``videollm`` package.

    That is the repository root for an editable install and ``site-packages`` for a regular
    one (the pipeline image, which deletes its sources). The bentofile's include patterns are
    ``videollm/**`` paths, so from either folder they take exactly the package being run and
    nothing beside it.
    """
    return Path(__file__).resolve().parents[2]  # <root>/videollm/serve/package.py


def package(
    checkpoint: str | None = None,
    model_uri: str | None = None,
    build: bool = True,
    build_ctx: str | Path | None = None,
) -> Packaged:
    """Save a checkpoint as a BentoML model and build the Bento that serves it.

    Args:
        checkpoint: A checkpoint folder or ``s3://`` URI.
        model_uri: Or an MLflow registry URI, e.g. ``models:/videollm@champion``.
        build: Also build the Bento (``bentoml build`` of ``videollm/serve/bentofile.yaml``).
        build_ctx: The folder holding the ``videollm`` package to put in the Bento; defaults
            to :func:`source_root`, the one being run.

    Returns:
        The model and Bento tags, and the provenance labels.

    Raises:
        VideoLLMError: the model cannot be resolved, or there is no bentofile or package to
            build from.
    """
    source = locate_model(checkpoint, model_uri)
    labels = {"videollm_source": "checkpoint", **_public(source.labels)}
    if model_uri:
        labels["videollm_source"] = model_uri
    model_tag = save_bento_model(source, labels)
    if not build:
        return Packaged(model_tag, None, labels)
    return Packaged(model_tag, build_bento(build_ctx or source_root(), labels), labels)


def save_bento_model(source: ModelSource, labels: dict[str, str]) -> str:
    """Copy the checkpoint (and local base models) into a new BentoML model; return its tag."""
    import bentoml

    config = CheckpointConfig.load(source.path)
    with bentoml.models.create(
        BENTO_MODEL, labels=labels, metadata={"model_version": source.version}
    ) as model:
        target = Path(model.path) / "checkpoint"
        shutil.copytree(source.path, target, ignore=shutil.ignore_patterns("checkpoint-*"))
        config.model.llm = _bundle(config.model.llm, target / "base" / "llm")
        if "encoder" in config.extract:
            config.extract["encoder"] = _bundle(config.extract["encoder"], target / "base" / "enc")
        config.save(target)
    logger.info("saved BentoML model %s (%s)", model.tag, source.version)
    return str(model.tag)


def build_bento(build_ctx: str | Path, labels: dict[str, str]) -> str:
    """``bentoml build`` of :data:`BENTOFILE` with ``build_ctx``'s ``videollm``; the Bento tag.

    BentoML walks all of ``build_ctx`` to match the include patterns: keep ``BENTOML_HOME``
    (and other big folders) out of it.
    """
    from bentoml.bentos import build_bentofile

    if not BENTOFILE.is_file():
        raise VideoLLMError(f"{BENTOFILE} not found: videollm was installed without its data")
    if not (Path(build_ctx) / "videollm" / "serve" / "service.py").is_file():
        raise VideoLLMError(f"{build_ctx} holds no videollm package to build the Bento from")
    bento = build_bentofile(str(BENTOFILE), build_ctx=str(build_ctx), labels=labels)
    logger.info("built Bento %s", bento.tag)
    return str(bento.tag)


def _bundle(ref: str, target: Path) -> str:
    """Copy a local model folder to ``target``; keep a hub id as it is."""
    if not Path(ref).is_dir():
        return ref  # a Hugging Face id: the serving machine resolves it
    shutil.copytree(ref, target)
    return "./" + target.relative_to(target.parents[1]).as_posix()


def _public(labels: dict[str, str]) -> dict[str, str]:
    # The source may be a presigned or credentialed URI; labels are shown to everyone.
    return {k: v for k, v in labels.items() if k != "mlflow_source"}
