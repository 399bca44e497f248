"""``manifest.jsonl`` kept true to the feature files: repaired on re-runs, checked before training.

The manifest holds one line per feature file with the file's sha256. Two writers into one
folder (before the output lock existed), or a file edited by hand, leave lines that disagree
with the files; training on them would silently use other data than the lineage says.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from safetensors import safe_open
from tqdm.auto import tqdm

from videollm.atomic import atomic_write_text
from videollm.errors import FeatureFormatError
from videollm.features.store import (
    FEATURES_KEY,
    MANIFEST_NAME,
    SHARD_PREFIX,
    SUFFIX,
    feature_path,
    file_sha256,
    manifest_record,
    read_jsonl,
    read_metadata,
)

logger = logging.getLogger(__name__)


def _needs_rebuild(out: Path, lines: list[dict]) -> str | None:
    """Why the manifest of ``out`` cannot be trusted, or None."""
    dupes = sorted(vid for vid, n in Counter(r.get("video_id") for r in lines).items() if n > 1)
    if dupes:
        return f"{len(dupes)} video(s) listed more than once (e.g. {dupes[0]!r})"
    gone = [r.get("file") for r in lines if not (out / str(r.get("file") or "?")).is_file()]
    if gone:
        return f"{len(gone)} line(s) name missing files (e.g. {gone[0]!r})"
    return None


def repair_manifest(out: str | Path) -> bool:
    """Rebuild ``out/manifest.jsonl`` from the feature files when it disagrees with them.

    Every feature file is hashed again, so this runs only when the manifest lists a video twice
    or names a missing file (what concurrent writers leave); a manifest that merely lacks
    lines is completed by extraction itself.

    Returns:
        Whether the manifest was rebuilt.
    """
    folder = Path(out)
    manifest = folder / MANIFEST_NAME
    lines = list(read_jsonl(manifest))
    why = _needs_rebuild(folder, lines)
    if why is None:
        return False
    logger.warning("%s: %s; rebuilding it from the feature files", manifest, why)
    sources = {r.get("video_id"): r.get("source", "") for r in lines}
    rebuilt = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        vid = path.name[: -len(SUFFIX)]
        try:
            meta = read_metadata(path)
        except FeatureFormatError as err:
            logger.warning("%s; left out of the manifest (it is extracted again)", err)
            continue
        with safe_open(str(path), framework="pt") as f:
            shape = f.get_slice(FEATURES_KEY).get_shape()
        source = meta.get("source") or sources.get(vid, "")
        frames = int(meta.get("frames", -1))
        rebuilt.append(manifest_record(vid, path, source, shape, frames, file_sha256(path)))
    atomic_write_text(manifest, "".join(json.dumps(r) + "\n" for r in rebuilt))
    return True


def manifest_entries(features_dir: str | Path) -> dict[str, dict]:
    """``video_id → manifest line`` from the manifests of a features folder and its shards."""
    root = Path(features_dir)
    entries: dict[str, dict] = {}
    for manifest in [root / MANIFEST_NAME, *sorted(root.glob(f"{SHARD_PREFIX}*/{MANIFEST_NAME}"))]:
        for rec in read_jsonl(manifest):
            if "video_id" in rec and "sha256" in rec:
                entries[str(rec["video_id"])] = rec
    return entries


def verify_features(
    features_dir: str | Path, video_ids: Iterable[str], shape: tuple[int, int] | None = None
) -> int:
    """Check each video's feature file against its manifest line: shape, then sha256.

    Shapes come from the manifest, so a video of another width is found before any file is
    read; the hashes then need one read of every file (with a progress bar).

    Args:
        features_dir: A features folder (sharded or not).
        video_ids: The videos about to be read.
        shape: ``(tokens, dim)`` every video must have, if known.

    Returns:
        How many files were verified (videos the manifest does not list are not).

    Raises:
        FeatureFormatError: A file differs from its manifest line or from ``shape``, naming it.
    """
    entries = manifest_entries(features_dir)
    wanted = sorted(set(video_ids))
    unlisted = [vid for vid in wanted if vid not in entries]
    if unlisted:
        logger.warning(
            "%d feature file(s) in %s are not in a manifest and cannot be verified (e.g. %s)",
            len(unlisted),
            features_dir,
            unlisted[0],
        )
    listed = [vid for vid in wanted if vid in entries]
    for vid in listed:
        got = (entries[vid].get("tokens"), entries[vid].get("dim"))
        if shape is not None and got != shape:
            raise FeatureFormatError(
                f"feature file {feature_path(features_dir, vid)} is {got}, but the other videos "
                f"(and the projector) are {shape}: it was extracted with other settings"
            )
    for vid in tqdm(listed, desc="verify features", unit="file", disable=len(listed) < 100):
        path = feature_path(features_dir, vid)
        actual, expected = file_sha256(path), str(entries[vid]["sha256"])
        if actual != expected:
            raise FeatureFormatError(
                f"feature file {path}: sha256 {actual[:12]}… does not match its manifest "
                f"({expected[:12]}…); it changed after extraction. Delete it and re-run "
                "`videollm extract` into the same folder to redo it"
            )
    return len(listed)
