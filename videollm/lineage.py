"""Lineage: a small ``_meta.json`` beside every step's output.

It says what produced the output (step, videollm version, a hash of the resolved config) and
from which inputs (URIs and content digests), so any folder or bucket prefix can be traced back
to the data and settings that made it.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from videollm import __version__
from videollm.atomic import atomic_write_text

META_FILE = "_meta.json"


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of the config as canonical JSON (key order and whitespace do not matter)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def content_digest(path: str | Path) -> str:
    """A digest of a local file (sha256 of its bytes) or folder (of its listing).

    A folder's digest covers every file's relative path and size, not its bytes: hashing a
    folder of videos byte by byte would cost as much as the step itself. Feature and record
    files carry their own sha256 in manifests for byte-level checks.
    """
    p = Path(path)
    h = hashlib.sha256()
    if p.is_file():
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return "sha256:" + h.hexdigest()
    # Dotfiles and dot-folders are bookkeeping (run markers, set-aside checkpoints), not content.
    files = (
        x
        for x in p.rglob("*")
        if x.is_file()
        and x.name != META_FILE
        and not any(part.startswith(".") for part in x.relative_to(p).parts)
    )
    for file in sorted(files):
        h.update(f"{file.relative_to(p).as_posix()}\t{file.stat().st_size}\n".encode())
    return "listing-sha256:" + h.hexdigest()


def build_meta(
    step: str, config: dict[str, Any], inputs: dict[str, tuple[str, str | None]]
) -> dict[str, Any]:
    """The ``_meta.json`` content.

    Args:
        step: Step name (``extract``, ``convert``, ``train``, ``evaluate``).
        config: The resolved config of the step.
        inputs: Input name → ``(uri, digest)``; digest may be ``None`` when unknown.
    """
    return {
        "step": step,
        "videollm_version": __version__,
        "config_hash": config_hash(config),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "inputs": {name: {"uri": uri, "digest": digest} for name, (uri, digest) in inputs.items()},
        "config": config,
    }


def write_meta(out_dir: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``_meta.json`` into a local output folder (atomically)."""
    return atomic_write_text(
        Path(out_dir) / META_FILE, json.dumps(meta, indent=2, default=str) + "\n"
    )
