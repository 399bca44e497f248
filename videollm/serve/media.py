"""Turning a ``video_url`` into a file in the request's temp folder, and nothing else.

Three kinds of URL are taken: a base64 ``data:`` URL, an ``s3://`` URI inside the platform
bucket, and an ``http(s)`` URL whose host the operator listed in
``VIDEOLLM_ALLOWED_MEDIA_HOSTS``. Anything else is refused before a byte is fetched: a server
that fetches whatever URL a client names can be pointed at the cluster's own services.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import logging
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from videollm.errors import StorageError
from videollm.serve.engine import BadRequest
from videollm.serve.serve_config import ServeConfig

logger = logging.getLogger(__name__)

FIELD = "video_url.url"
CHUNK = 1 << 20
FETCH_TIMEOUT_S = 30


def _too_large(size: int, cfg: ServeConfig) -> BadRequest:
    return BadRequest(f"{FIELD}: {size} bytes exceeds {cfg.max_upload_mb} MB", status=413)


def _from_data_url(url: str, dest: Path, cfg: ServeConfig, mime_prefix: str) -> Path:
    header, comma, payload = url.partition(",")
    if not comma or not header.endswith(";base64"):
        raise BadRequest(f"{FIELD}: a data: URL must be data:<type>;base64,<data>")
    mime = header[len("data:") : -len(";base64")]
    if mime and not mime.startswith((mime_prefix, "application/octet-stream")):
        raise BadRequest(f"{FIELD}: a data: URL of type {mime!r}; a {mime_prefix}* type is needed")
    if len(payload) * 3 // 4 > cfg.max_upload_mb * 2**20:
        raise _too_large(len(payload) * 3 // 4, cfg)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{FIELD}: the data: URL's payload is not valid base64") from None
    dest.write_bytes(data)
    return dest


def _from_bucket(url: str, dest: Path, cfg: ServeConfig) -> Path:
    from videollm.storage import resolve_object

    bucket = urlsplit(url).netloc
    if not cfg.bucket:
        raise BadRequest(f"{FIELD}: s3:// videos are off here (VIDEOLLM_BUCKET is not set)")
    if bucket != cfg.bucket:
        raise BadRequest(
            f"{FIELD}: bucket {bucket!r} is not the platform bucket; only "
            f"s3://{cfg.bucket}/... is read"
        )
    # One answer for a missing, unreadable or over-sized object: a client learns nothing about
    # what else the bucket holds.
    unreadable = BadRequest(f"{FIELD}: {url} is not a readable video in the platform bucket")
    try:
        store, key = resolve_object(url)
        size = store.size(key)
        if size is None or size > cfg.max_upload_mb * 2**20:
            raise unreadable
        return store.get(key, dest)
    except StorageError as err:
        logger.warning("could not read %s: %s", url, err)
        raise unreadable from err


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would leave the allowed host, so it is an error, not followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise BadRequest(f"{FIELD}: the media host answered with a redirect (HTTP {code})")


def _from_allowed_host(url: str, dest: Path, cfg: ServeConfig) -> Path:
    host = (urlsplit(url).hostname or "").lower()
    allowed = {h.strip().lower() for h in cfg.allowed_media_hosts.split(",") if h.strip()}
    if host not in allowed:
        raise BadRequest(
            f"{FIELD}: host {host!r} is not allowed; send the video as a data: URL, or list "
            "the host in VIDEOLLM_ALLOWED_MEDIA_HOSTS"
        )
    opener = urllib.request.build_opener(_NoRedirects)
    limit = cfg.max_upload_mb * 2**20
    try:
        with opener.open(url, timeout=FETCH_TIMEOUT_S) as response, dest.open("wb") as out:
            received = 0
            while chunk := response.read(CHUNK):
                received += len(chunk)
                if received > limit:
                    raise _too_large(received, cfg)
                out.write(chunk)
    except BadRequest:  # over the limit, or a redirect (BadRequest is a ValueError too)
        raise
    except urllib.error.HTTPError as err:
        raise BadRequest(f"{FIELD}: the media host answered HTTP {err.code}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as err:
        # ValueError: http.client.InvalidURL (a bad port); HTTPException: IncompleteRead.
        raise BadRequest(f"{FIELD}: could not fetch the video ({type(err).__name__})") from None
    return dest


def fetch_video(url: str, folder: Path, cfg: ServeConfig, name: str = "video") -> Path:
    """Write the video (or, with ``name`` ``frame-N``, the image) ``url`` names into ``folder``.

    Returns:
        The file, ``folder / name``.

    Raises:
        BadRequest: A URL of another kind, a host not allowed, a bucket not the platform's, a
            malformed ``data:`` URL, a missing object, or over ``max_upload_mb`` (413).
    """
    dest = folder / name
    scheme = urlsplit(url).scheme.lower()
    if url.startswith("data:"):
        return _from_data_url(url, dest, cfg, "video/" if name == "video" else "image/")
    if scheme in ("s3", "minio"):
        return _from_bucket(url, dest, cfg)
    if scheme in ("http", "https"):
        return _from_allowed_host(url, dest, cfg)
    raise BadRequest(
        f"{FIELD}: must be a data: URL, an s3:// URI in the platform bucket or an http(s) URL "
        f"of an allowed host, got a {scheme or 'schemeless'} URL"
    )
