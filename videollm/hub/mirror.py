"""Copy a Hugging Face model (Hub id or local folder) to an S3 prefix, for air-gapped clusters.

``videollm models mirror lmsys/vicuna-7b-v1.5 s3://models/vicuna-7b`` puts the model's
safetensors weights, config and tokenizer files under the prefix, then writes
:data:`MANIFEST_NAME` (source, commit, every file with its size and sha256) **last**. Loading
(:mod:`videollm.hub.cache`) accepts only a prefix with that manifest, so a copy that was
interrupted is never taken for a model.

Re-running is cheap: a file is skipped when the object under its key has its size *and* its
sha256 is on record, in the manifest of a finished copy or in :data:`PARTIAL_NAME`, which is
rewritten after every upload so an interrupted copy resumes where it stopped. Size alone is not
trusted: two revisions of one architecture have weight files of equal sizes.

Pickle weights (``*.bin``, ``*.pt``, ...) run code when loaded, so they are left out unless
``allow_pickle``; a model that has no safetensors weights is refused with that hint.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from videollm import __version__
from videollm.errors import ConfigError, StorageError
from videollm.hub import resolve_model_ref
from videollm.storage import S3Storage, StorageNotFoundError, is_remote, normalize_key, storage_at

logger = logging.getLogger(__name__)

MANIFEST_NAME = "videollm-mirror.json"
PARTIAL_NAME = "videollm-mirror.partial.json"
FORMAT = "videollm-model-mirror/1"

WEIGHT_PATTERNS = ("*.safetensors",)
# Config, tokenizer (tokenizer.json, tokenizer.model, merges/vocab .txt, chat_template.jinja)
# and the licence that must travel with the weights.
SUPPORT_PATTERNS = ("*.json", "*.model", "*.tiktoken", "*.txt", "*.jinja", "*.md", "LICENSE*")
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle")


@dataclass(frozen=True)
class MirrorResult:
    """What :func:`mirror_model` did.

    Attributes:
        uri: The destination prefix.
        source: The Hub id or (absolute) folder copied.
        commit: The Hub commit copied, ``None`` for a local folder.
        files: Files in the mirror.
        copied: Files uploaded this time.
        skipped: Files already there with the same size and sha256.
        bytes: Bytes uploaded this time.
    """

    uri: str
    source: str
    commit: str | None
    files: int
    copied: int
    skipped: int
    bytes: int


def mirror_model(
    source: str, dest: str, revision: str | None = None, allow_pickle: bool = False
) -> MirrorResult:
    """Copy the model ``source`` to the S3 prefix ``dest`` and write its manifest last.

    Args:
        source: A Hugging Face Hub id (downloaded with ``snapshot_download``, which reads
            ``HF_TOKEN`` and caches under ``HF_HOME``) or a local model folder.
        dest: ``s3://BUCKET/PREFIX`` (or ``minio://``).
        revision: Hub branch, tag or commit (default ``main``); not allowed for a folder.
        allow_pickle: Also copy pickle weights (``*.bin``, ``*.pt``, ...).

    Raises:
        ConfigError: ``dest`` is not an S3 URI, ``source`` cannot be found, or it has no
            safetensors weights (and ``allow_pickle`` is off).
        StorageError: An upload failed (re-run to resume).
    """
    if not is_remote(dest):
        raise ConfigError(
            f"destination {dest!r} must be s3://BUCKET/PREFIX (a local folder can be given "
            "to --llm/--encoder as it is)"
        )
    storage = storage_at(dest)
    assert isinstance(storage, S3Storage)
    if not storage.prefix:
        raise ConfigError(
            f"destination {dest!r} names a bucket only; add a prefix, e.g. /models/NAME"
        )
    folder, label, commit = _local_copy(source, revision, allow_pickle)
    rels = select_files(folder, allow_pickle)
    if not any(fnmatch.fnmatch(Path(r).name, p) for r in rels for p in WEIGHT_PATTERNS):
        hint = "" if allow_pickle else " (pass --allow-pickle to copy pickle weights instead)"
        raise ConfigError(f"{label}: no *.safetensors weights to mirror in {folder}{hint}")
    files = [_record(folder, rel) for rel in rels]
    manifest = {
        "format": FORMAT,
        "source": label,
        "revision": revision,
        "commit": commit,
        "mirrored_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "videollm_version": __version__,
        "files": files,
    }
    finished = read_manifest(storage, MANIFEST_NAME)
    partial = read_manifest(storage, PARTIAL_NAME)
    present = storage.sizes()
    if finished and finished["files"] == files and _all_present(files, present):
        logger.info("%s already holds %s (%d files); nothing to copy", dest, label, len(files))
        return MirrorResult(dest, label, commit, len(files), 0, len(files), 0)
    if finished:
        # From here on the prefix is being changed: it must stop looking complete at once.
        storage.delete(MANIFEST_NAME)
    known = {f["path"]: f["sha256"] for m in (finished, partial) if m for f in m["files"]}
    copied, skipped, nbytes = _upload(storage, folder, files, known, present)
    storage.put_bytes(MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
    storage.delete(PARTIAL_NAME)
    logger.info(
        "mirrored %s to %s: %d files copied, %d already there", label, dest, copied, skipped
    )
    return MirrorResult(dest, label, commit, len(files), copied, skipped, nbytes)


def select_files(folder: Path, allow_pickle: bool) -> list[str]:
    """The files of ``folder`` (relative, sorted) that a mirror copies."""
    patterns = WEIGHT_PATTERNS + SUPPORT_PATTERNS + (PICKLE_PATTERNS if allow_pickle else ())
    chosen = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_dir() or any(part.startswith(".") for part in rel.split("/")):
            continue  # .cache/, .git/ and temp files are not part of the model
        if any(fnmatch.fnmatch(path.name, p) for p in patterns):
            chosen.append(rel)
        elif any(fnmatch.fnmatch(path.name, p) for p in PICKLE_PATTERNS):
            logger.warning("skipping pickle file %s (pass --allow-pickle to copy it)", rel)
    return chosen


def read_manifest(storage: S3Storage, name: str) -> dict[str, Any] | None:
    """The manifest ``name`` under ``storage``'s prefix, ``None`` when there is none.

    Raises:
        StorageError: It cannot be read, or is not a mirror manifest.
    """
    try:
        data = storage.get_bytes(name)
    except StorageNotFoundError:
        return None
    return parse_manifest(data, storage.uri(name))


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    """Check a manifest's shape; its keys must stay inside the prefix.

    Raises:
        StorageError: ``data`` is not a manifest this version can read.
    """
    try:
        manifest = json.loads(data)
        if manifest.get("format") != FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}, expected {FORMAT!r}")
        for f in manifest["files"]:
            if (
                normalize_key(f["path"]) != f["path"]
                or not isinstance(f["size"], int)
                or not isinstance(f["sha256"], str)
            ):
                raise ValueError(f"bad file entry {f!r}")
    except (ValueError, KeyError, TypeError, AttributeError, StorageError) as err:
        raise StorageError(f"{where} is not a valid model mirror manifest: {err}") from err
    return manifest


def _local_copy(
    source: str, revision: str | None, allow_pickle: bool
) -> tuple[Path, str, str | None]:
    """The folder holding ``source``, its name for the manifest, and its Hub commit."""
    ref = resolve_model_ref(source, "source")
    if Path(ref).is_dir():
        if revision:
            raise ConfigError(f"--revision {revision!r} applies to Hub ids, not to folder {ref}")
        return Path(ref), ref, None
    if is_remote(ref) or "://" in ref:
        raise ConfigError(f"source {source!r}: give a Hugging Face Hub id or a local folder")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    patterns = WEIGHT_PATTERNS + SUPPORT_PATTERNS + (PICKLE_PATTERNS if allow_pickle else ())
    try:
        folder = Path(snapshot_download(ref, revision=revision, allow_patterns=list(patterns)))
    except (HfHubHTTPError, OSError, ValueError) as err:
        reason = " ".join(str(err).split())[:300]
        raise ConfigError(
            f"source {source!r}: cannot download it from the Hugging Face Hub ({reason}); "
            "check the id, --revision, HF_TOKEN for gated models, and network access"
        ) from err
    # The cache keeps each commit in snapshots/<commit hash>/.
    commit = folder.name if folder.parent.name == "snapshots" else None
    return folder, ref, commit


def _record(folder: Path, rel: str) -> dict[str, Any]:
    path = folder / rel
    with path.open("rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    return {"path": rel, "size": path.stat().st_size, "sha256": sha}


def _all_present(files: list[dict[str, Any]], present: dict[str, int]) -> bool:
    return all(present.get(f["path"]) == f["size"] for f in files)


def _upload(
    storage: S3Storage,
    folder: Path,
    files: list[dict[str, Any]],
    known: dict[str, str],
    present: dict[str, int],
) -> tuple[int, int, int]:
    """Upload what is missing or different; return (copied, skipped, bytes)."""
    todo = [
        f
        for f in files
        if present.get(f["path"]) != f["size"] or known.get(f["path"]) != f["sha256"]
    ]
    done = [f for f in files if f not in todo]
    nbytes = sum(f["size"] for f in todo)
    # disable=None: the bar hides itself when stderr is not a terminal (CI logs, KFP pods).
    with tqdm(total=nbytes, unit="B", unit_scale=True, desc="mirror", disable=None) as bar:
        for f in todo:
            bar.set_postfix_str(f["path"])
            storage.put(folder / f["path"], f["path"], progress=bar.update)
            done.append(f)
            partial = {"format": FORMAT, "files": done}
            storage.put_bytes(PARTIAL_NAME, json.dumps(partial).encode())
    return len(todo), len(files) - len(todo), nbytes
