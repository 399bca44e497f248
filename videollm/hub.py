"""Base models by reference: a local folder or a Hugging Face id, checked before loading.

A checkpoint's ``videollm_config.json`` names its base LLM and encoder. A relative folder such
as ``m/llm`` means nothing once the checkpoint is used from another working directory (or
another machine), and worse, it looks like a Hub id, so loading it would go to the Hub. So
local folders are stored as absolute paths, and a reference that can be neither a folder nor a
Hub id is refused with its name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from videollm.errors import ConfigError

T = TypeVar("T")

_URI_SCHEMES = ("s3://", "minio://", "hf://")


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
            exist.
    """
    if not ref or ref.startswith(_URI_SCHEMES):
        return ref
    path = Path(ref).expanduser()
    if path.exists():
        return str(path.resolve())
    if _looks_like_path(ref):
        raise ConfigError(f"{what}: {ref} does not exist (no such folder)")
    return ref


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
        where = (
            "a local folder"
            if Path(ref).expanduser().is_absolute() or _looks_like_path(ref)
            else f"no local folder {ref!r} in {Path.cwd()}, so a Hugging Face Hub id"
        )
        reason = " ".join(str(err).split())[:300]
        raise ConfigError(f"{what}: cannot load {ref!r} ({where}): {reason}") from err
