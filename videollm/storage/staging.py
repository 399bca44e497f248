"""Staging: give a step local folders for remote inputs and outputs.

A step that works on local files runs as :func:`stage_in` (a remote prefix or object comes down
into a cache folder) → work → :func:`stage_out` (the output folder goes up when the work
succeeds). Local paths pass through untouched.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from videollm.errors import ConfigError
from videollm.locking import exclusive_output
from videollm.ranks import is_main_process
from videollm.storage.sync import download_prefix, upload_dir
from videollm.storage.uri import is_remote, resolve


def cache_dir(uri: str) -> Path:
    """Local cache folder for a remote URI (``VIDEOLLM_CACHE_DIR``, default ~/.cache/videollm)."""
    root = Path(os.environ.get("VIDEOLLM_CACHE_DIR", Path.home() / ".cache" / "videollm"))
    return root / hashlib.sha256(uri.encode()).hexdigest()[:16]


def stage_in(uri: str, keep: Callable[[str], bool] | None = None) -> Path:
    """A local path holding the object or prefix at ``uri`` (downloaded when remote).

    Args:
        uri: A local path, or a remote object (``.../val.jsonl``) or prefix.
        keep: For a prefix, which relative keys to download (default: all), e.g. one
            shard's videos.
    """
    if not is_remote(uri):
        return Path(uri)
    storage, key = resolve(uri)
    if key and storage.exists(key):  # a single object, e.g. .../val.jsonl
        local = cache_dir(uri) / Path(key).name
        storage.get(key, local)
        return local
    return download_prefix(uri, cache_dir(uri), keep=keep)


@contextmanager
def stage_out(
    uri: str,
    check: Callable[[Path], None] | None = None,
    claim: Callable[[Path], None] | None = None,
) -> Iterator[Path]:
    """A local folder for a step's output; uploaded to ``uri`` when the step succeeds.

    What already exists under a remote ``uri`` is fetched first, so finished work (features,
    checkpoints) is reused and a re-run resumes instead of starting over. The (local or
    staging) folder is locked for the step, so a second writer on this machine is refused.
    Under ``torchrun`` only rank 0 locks or claims.

    Args:
        uri: Output folder or remote prefix.
        check: Sees the folder before anything is written (e.g. "is this a checkpoint?").
        claim: Called on a *local* output folder by rank 0 (a remote prefix may be written
            from other machines, where nothing here could tell a dead writer from a live
            one); the steps record their MLflow run there.

    Raises:
        ConfigError: ``uri`` is an existing file.
        OutputLockedError: Another process is writing the folder.
    """
    remote = is_remote(uri)
    local = cache_dir(uri) if remote else Path(uri)
    if local.exists() and not local.is_dir():
        raise ConfigError(f"out: {uri} is an existing file, not a folder")
    main = is_main_process()
    with exclusive_output(local) if main else nullcontext():
        if remote:
            download_prefix(uri, local)
        local.mkdir(parents=True, exist_ok=True)
        if check is not None:
            check(local)
        if main and not remote and claim is not None:
            claim(local)
        yield local
        if remote:
            upload_dir(local, uri)
