"""Base models by reference: a local folder, a Hugging Face id or an ``s3://`` mirror.

A checkpoint's ``videollm_config.json`` names its base LLM and encoder. A relative folder such
as ``m/llm`` means nothing once the checkpoint is used from another working directory (or
another machine), and worse, it looks like a Hub id, so loading it would go to the Hub. So
local folders are stored as absolute paths, and a reference that can be neither a folder nor a
Hub id is refused with its name. An ``s3://`` (or ``minio://``) prefix written by
``videollm models mirror`` is kept as it is, and :func:`model_source` turns it into a local copy
right before loading, so an air-gapped cluster loads its base models from its own object store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from videollm.errors import ConfigError, StorageError
from videollm.storage.uri import is_remote, split_remote

T = TypeVar("T")

_URI_SCHEMES = ("hf://",)  # passed through to transformers as written


def _looks_like_path(ref: str) -> bool:
    # A Hub id is "name" or "org/name": anything else with a separator is a filesystem path.
    return ref.startswith(("/", "./", "../", "~", ".\\")) or ref.count("/") > 1 or "\\" in ref


def resolve_model_ref(ref: str, what: str) -> str:
    """An existing local folder as an absolute path; a Hub id or URI unchanged.

    Args:
        ref: What the user gave: a folder, a Hub id (``org/name``) or a URI.
        what: The setting it came from, named in errors (e.g. ``model.llm``).

    Returns:
        The reference to store and load.

    Raises:
        ConfigError: ``ref`` is written as a path (``/x``, ``./x``, ``a/b/c``) that does not
            exist, or is an ``s3://`` URI without a bucket.
    """
    if is_remote(ref):
        try:
            split_remote(ref)
        except StorageError as err:
            raise ConfigError(f"{what}: {err}") from None
        return ref
    if not ref or ref.startswith(_URI_SCHEMES):
        return ref
    path = Path(ref).expanduser()
    if path.exists():
        return str(path.resolve())
    if _looks_like_path(ref):
        raise ConfigError(f"{what}: {ref} does not exist (no such folder)")
    return ref


def model_source(ref: str, what: str) -> str:
    """What to hand ``from_pretrained``: ``ref`` itself, or for an ``s3://`` mirror its local copy.

    Args:
        ref: A reference kept by :func:`resolve_model_ref`.
        what: The setting it came from, named in errors.

    Raises:
        ConfigError: ``ref`` is an S3 prefix that holds no finished mirror.
        StorageError: The mirror cannot be read or does not match its manifest.
    """
    if not is_remote(ref):
        return ref
    from videollm.hub.cache import fetch_mirror  # late: only S3 references need it

    return str(fetch_mirror(ref, what))


def load_pretrained(load: Callable[[], T], ref: str, what: str) -> T:
    """Run a ``from_pretrained`` call, turning its failure into one error that names ``ref``.

    transformers raises ``OSError`` for a missing folder, missing files or an unreachable Hub,
    and ``ValueError`` for a folder of an unknown kind; either way the user needs to know which
    setting to fix, not transformers' internals.

    Raises:
        ConfigError: The model could not be loaded.
    """
    try:
        return load()
    except (OSError, ValueError, KeyError) as err:
        if is_remote(ref):
            where = "a model mirror, downloaded to the local cache"
        elif Path(ref).expanduser().is_absolute() or _looks_like_path(ref):
            where = "a local folder"
        else:
            where = f"no local folder {ref!r} in {Path.cwd()}, so a Hugging Face Hub id"
        reason = " ".join(str(err).split())[:300]
        raise ConfigError(f"{what}: cannot load {ref!r} ({where}): {reason}") from err
