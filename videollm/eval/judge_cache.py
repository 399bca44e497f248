"""A cache of LLM-judge replies, so re-running a benchmark costs no judge calls.

One JSON Lines file, local or on S3 (``s3://``/``minio://``), one entry a line::

    {"key": ..., "model": ..., "served_model": ..., "criterion": ..., "id": ..., "reply": ...}

The key is the SHA-256 of the whole request that decides the verdict (judge model, prompt
messages, temperature, see :func:`cache_key`). The messages hold the question, the reference
and the prediction, so a changed prediction is a new key and an unchanged one a hit. The raw
reply text is stored, not the parsed verdict: replies are parsed on every run, so a malformed
reply is counted again without a new call and a parser fix applies to old entries.

The file is append-only and each entry is flushed as it arrives, so a killed run keeps what it
paid for; a line it left half-written is skipped with a warning on the next load. A remote
cache is staged in a local file (:func:`videollm.storage.staging.cache_dir`) and uploaded on
:meth:`JudgeCache.close`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from videollm.errors import ConfigError
from videollm.storage import is_remote, local_path, resolve_object
from videollm.storage.staging import cache_dir

logger = logging.getLogger(__name__)

__all__ = ["CacheEntry", "JudgeCache", "cache_key"]


def cache_key(model: str, messages: list[dict[str, Any]], temperature: float) -> str:
    """The cache key of one judge request: SHA-256 of its canonical JSON.

    Args:
        model: The judge model name sent in the request (``JudgeConfig.model``).
        messages: The prompt messages (they contain question, reference and prediction).
        temperature: The sampling temperature sent.
    """
    canonical = json.dumps(
        {"model": model, "messages": messages, "temperature": float(temperature)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """One cached judge reply.

    Attributes:
        key: :func:`cache_key` of the request.
        model: The model name the request asked for.
        served_model: The model name the server said answered (``None`` if it did not say).
        criterion: The judge criterion (``qa``, ``correctness`` ...), for people reading it.
        id: The prediction's id, for people reading it.
        reply: The raw reply text.
    """

    key: str
    model: str
    served_model: str | None
    criterion: str
    id: str | None
    reply: str

    @classmethod
    def from_line(cls, line: str) -> CacheEntry | None:
        """Parse one file line; ``None`` when it is not a complete entry."""
        try:
            data = json.loads(line)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        key, reply = data.get("key"), data.get("reply")
        if not isinstance(key, str) or not key or not isinstance(reply, str):
            return None
        served, row_id = data.get("served_model"), data.get("id")
        return cls(
            key=key,
            model=str(data.get("model", "")),
            served_model=served if isinstance(served, str) else None,
            criterion=str(data.get("criterion", "")),
            id=None if row_id is None else str(row_id),
            reply=reply,
        )

    def to_line(self) -> str:
        """The entry as one JSON line, newline included."""
        return json.dumps(asdict(self), ensure_ascii=False) + "\n"


def _read_entries(path: Path, where: str) -> dict[str, CacheEntry]:
    """Entries of a cache file (missing = none); corrupt lines are skipped with a warning."""
    if not path.is_file():
        return {}
    entries: dict[str, CacheEntry] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            entry = CacheEntry.from_line(line)
            if entry is None:
                # A run killed mid-write leaves a partial last line; the rest is still good.
                logger.warning(
                    "judge cache %s line %d is not a complete entry (a killed run?); skipped",
                    where,
                    number,
                )
                continue
            entries.setdefault(entry.key, entry)
    return entries


class JudgeCache:
    """Judge replies by request key, in a JSON Lines file; thread-safe.

    Open with :meth:`open` and close (or use as a context manager) to upload a remote cache.
    One open cache may serve several judge runs (one per benchmark).

    Args:
        uri: Where the cache lives (a path or an ``s3://`` URI), for messages and uploads.
        path: The local file entries are appended to (the staging copy for a remote cache).
        entries: Entries already loaded.
        dirty: Whether the local file holds entries the remote copy lacks.
    """

    def __init__(
        self, uri: str, path: Path, entries: dict[str, CacheEntry], dirty: bool = False
    ) -> None:
        self.uri = uri
        self.path = path
        self.remote = is_remote(uri)
        self._entries = entries
        self._dirty = dirty
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    @classmethod
    def open(cls, uri: str) -> JudgeCache:
        """Load the cache at ``uri``; a missing file is an empty cache.

        For a remote cache, entries left in the local staging copy by a run that was killed
        before uploading are kept and uploaded with the next :meth:`close`.

        Raises:
            ConfigError: ``uri`` is empty or names a folder.
            StorageError: The remote cache could not be read.
        """
        if not str(uri).strip():
            raise ConfigError("judge.cache: empty path; give a file path or s3:// URI")
        if not is_remote(uri):
            path = local_path(uri)
            if path.is_dir():
                raise ConfigError(f"judge.cache: {uri} is a folder; give a .jsonl file path")
            return cls(str(uri), path, _read_entries(path, str(uri)))
        storage, key = resolve_object(uri)
        path = cache_dir(uri) / Path(key).name
        entries = _read_entries(path, str(path))
        remote = _fetch_remote(storage, key, path, uri)
        # Entries only the staging copy holds were paid for by a run killed before uploading.
        unsent = any(k not in remote for k in entries)
        missing = [e for k, e in remote.items() if k not in entries]
        if missing:
            _append(path, missing)
            entries |= {e.key: e for e in missing}
        logger.info("judge cache %s: %d entries", uri, len(entries))
        return cls(str(uri), path, entries, dirty=unsent)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key``, or ``None``."""
        with self._lock:
            return self._entries.get(key)

    def put(self, entry: CacheEntry) -> None:
        """Add ``entry`` and append it to the file at once (a later kill keeps it).

        A key already present is left as it is.
        """
        with self._lock:
            if entry.key in self._entries:
                return
            if self._file is None:
                self._file = _open_for_append(self.path)
            self._file.write(entry.to_line())
            self._file.flush()
            self._entries[entry.key] = entry
            self._dirty = True

    def close(self) -> None:
        """Close the file and, for a remote cache with new entries, upload it.

        Entries another run uploaded meanwhile are merged in first, so two runs sharing one
        remote cache lose nothing unless their uploads race each other.

        Raises:
            StorageError: The upload failed (the staging copy keeps the entries for next time).
        """
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            if not (self.remote and self._dirty):
                return
            storage, key = resolve_object(self.uri)
            theirs = _fetch_remote(storage, key, self.path, self.uri)
            missing = [e for k, e in theirs.items() if k not in self._entries]
            if missing:
                _append(self.path, missing)
                self._entries |= {e.key: e for e in missing}
            storage.put(self.path, key)
            self._dirty = False
            logger.info("judge cache: uploaded %d entries to %s", len(self._entries), self.uri)

    def __enter__(self) -> JudgeCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Upload even after a failure: the replies that did come were paid for.
        self.close()

    def __repr__(self) -> str:
        return f"JudgeCache({self.uri!r}, entries={len(self)})"


def _fetch_remote(storage: Any, key: str, path: Path, uri: str) -> dict[str, CacheEntry]:
    """Entries of the remote object (missing = none), via a temporary file next to ``path``."""
    if not storage.exists(key):
        return {}
    tmp = path.with_name(f".{path.name}.remote")
    try:
        storage.get(key, tmp)
        return _read_entries(tmp, uri)
    finally:
        tmp.unlink(missing_ok=True)


def _open_for_append(path: Path) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A killed run may have left a partial last line; start on a fresh one so the next entry
    # is not glued to it.
    glued = False
    if path.is_file() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            f.seek(-1, 2)
            glued = f.read(1) != b"\n"
    f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - the cache holds it until close()
    if glued:
        f.write("\n")
    return f


def _append(path: Path, entries: list[CacheEntry]) -> None:
    with _open_for_append(path) as f:
        f.writelines(e.to_line() for e in entries)
