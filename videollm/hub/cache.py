"""Local copies of S3 model mirrors, so ``from_pretrained`` loads a folder and never the Hub.

An ``s3://`` model reference (a prefix written by ``videollm models mirror``) is downloaded
once per machine into ``$HF_HOME/videollm-s3/<bucket>/<prefix>@<content id>``. The content id
digests the manifest's file list, so a re-mirrored model gets a new folder and an unchanged one
is reused without a download. Files go to a temporary folder beside it, each checked against
its sha256, and the folder is renamed into place only when all of them matched: a folder under
its final name is always complete. Processes of one machine that start together (the ranks of
a training job) take a file lock: one downloads, the others wait for it and reuse its copy.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from videollm.errors import ConfigError, StorageError
from videollm.hub.mirror import MANIFEST_NAME, PARTIAL_NAME, read_manifest
from videollm.storage import S3Storage, split_remote, storage_at

logger = logging.getLogger(__name__)

CACHE_SUBDIR = "videollm-s3"
_CHUNK = 8 << 20


def cache_root() -> Path:
    """``$HF_HOME/videollm-s3``: beside the Hub cache, on the cluster's cache volume."""
    from huggingface_hub import constants

    # Read at call time, not at import: HF_HOME may be set after videollm is imported.
    return Path(os.environ.get("HF_HOME") or constants.HF_HOME) / CACHE_SUBDIR


def content_id(manifest: dict[str, Any]) -> str:
    """A short digest of the mirror's files (paths and sha256), not of its labels."""
    listing = json.dumps([[f["path"], f["sha256"]] for f in manifest["files"]])
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def fetch_mirror(uri: str, what: str) -> Path:
    """The local folder holding the model mirrored at ``uri``, downloaded when not cached.

    Args:
        uri: ``s3://BUCKET/PREFIX`` (or ``minio://``) written by ``videollm models mirror``.
        what: The setting it came from (``model.llm``, ``encoder``), named in errors.

    Raises:
        ConfigError: ``uri`` holds no finished mirror (no manifest).
        StorageError: S3 cannot be reached or refuses the credentials, or a file does not match
            its manifest.
    """
    try:
        bucket, prefix = split_remote(uri)
        storage = storage_at(uri)
        assert isinstance(storage, S3Storage)
        manifest = read_manifest(storage, MANIFEST_NAME)
        if manifest is None:
            raise ConfigError(f"{what}: {uri} is not a model mirror: {_why_no_manifest(storage)}")
        target = cache_root() / bucket / f"{prefix}@{content_id(manifest)}"
        if target.is_dir():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target.with_name(target.name + ".lock"), uri):
            if not target.is_dir():  # else another process finished it while this one waited
                _download(storage, manifest, target, uri)
    except StorageError as err:
        raise StorageError(f"{what}: cannot load the model mirror {uri}: {err}") from err
    return target


def _why_no_manifest(storage: S3Storage) -> str:
    count = len(set(storage.sizes()) - {PARTIAL_NAME})
    if count:
        return (
            f"it holds {count} file(s) but no {MANIFEST_NAME}, so the copy did not finish; "
            f"run `videollm models mirror SOURCE {storage.uri()}` again"
        )
    return (
        f"nothing is stored there (no such bucket or prefix); check the URI, or run "
        f"`videollm models mirror SOURCE {storage.uri()}`"
    )


@contextmanager
def _locked(path: Path, uri: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``, waiting for the process that holds it."""
    with path.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another process to finish downloading %s", uri)
            fcntl.flock(f, fcntl.LOCK_EX)
        yield  # closing the file releases the lock, also when the process dies


def _download(storage: S3Storage, manifest: dict[str, Any], target: Path, uri: str) -> None:
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the cache from other users of the volume
        total = sum(f["size"] for f in manifest["files"])
        logger.info("downloading %s (%d files, %d bytes) to %s", uri, len(manifest["files"]),
                    total, target)  # fmt: skip
        with tqdm(total=total, unit="B", unit_scale=True, desc="model", disable=None) as bar:
            for entry in manifest["files"]:
                _fetch_file(storage, entry, tmp / entry["path"], bar)
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fetch_file(storage: S3Storage, entry: dict[str, Any], dest: Path, bar: tqdm) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with storage.open(entry["path"]) as src, dest.open("wb") as out:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
            bar.update(len(chunk))
        out.flush()
        os.fsync(out.fileno())  # the rename below must not publish data still in the page cache
    if size != entry["size"] or digest.hexdigest() != entry["sha256"]:
        raise StorageError(
            f"{storage.uri(entry['path'])} does not match its manifest ({size} bytes, sha256 "
            f"{digest.hexdigest()[:12]}…; expected {entry['size']} bytes, "
            f"{entry['sha256'][:12]}…): it changed after mirroring; mirror the model again"
        )
