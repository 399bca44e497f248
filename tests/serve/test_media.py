"""``video_url`` → a file: data: URLs, the platform bucket (a real S3 server) and allowed
hosts (a real HTTP server); everything else refused before a byte is fetched."""

from __future__ import annotations

import base64
from http.server import BaseHTTPRequestHandler

import pytest
from local_http import serving

from videollm.serve.engine import BadRequest
from videollm.serve.media import fetch_video
from videollm.serve.serve_config import ServeConfig
from videollm.storage import resolve

VIDEO = b"\x00\x00\x00\x20ftypisom" + bytes(range(256)) * 8


class Media(BaseHTTPRequestHandler):
    """``/clip.mp4`` is the video, ``/big.mp4`` 2 MB, ``/moved`` a redirect, else 404."""

    def do_GET(self) -> None:
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data")
            self.end_headers()
            return
        body = {"/clip.mp4": VIDEO, "/big.mp4": b"\0" * (2 * 2**20)}.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


def test_a_data_url_is_decoded_into_the_folder(tmp_path):
    url = "data:video/mp4;base64," + base64.b64encode(VIDEO).decode()
    path = fetch_video(url, tmp_path, ServeConfig())
    assert path.parent == tmp_path and path.read_bytes() == VIDEO


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("data:video/mp4,AAAA", "a data: URL must be data:<type>;base64,<data>"),
        ("data:video/mp4;base64,%%%", "payload is not valid base64"),
        ("data:text/html;base64,AAAA", "a data: URL of type 'text/html'"),
        ("file:///etc/passwd", "must be a data: URL, an s3:// URI"),
        ("ftp://host/v.mp4", "must be a data: URL, an s3:// URI"),
        ("/etc/passwd", "got a schemeless URL"),
        ("http://10.0.0.1/v.mp4", "host '10.0.0.1' is not allowed"),
        ("s3://secrets/v.mp4", "bucket 'secrets' is not the platform bucket"),
    ],
)
def test_other_urls_are_refused_naming_why(tmp_path, url, message):
    with pytest.raises(BadRequest, match="video_url.url: .*" + message.replace("(", r"\(")):
        fetch_video(url, tmp_path, ServeConfig(bucket="platform"))
    assert list(tmp_path.iterdir()) == []


def test_s3_urls_are_off_without_a_platform_bucket(tmp_path):
    with pytest.raises(BadRequest, match="VIDEOLLM_BUCKET is not set"):
        fetch_video("s3://platform/v.mp4", tmp_path, ServeConfig())


def test_an_allowed_host_is_fetched_and_its_limits_hold(tmp_path):
    cfg = ServeConfig(allowed_media_hosts="media.example, 127.0.0.1", max_upload_mb=1)
    with serving(Media) as base:
        assert fetch_video(f"{base}/clip.mp4", tmp_path, cfg).read_bytes() == VIDEO
        with pytest.raises(BadRequest, match="exceeds 1 MB") as big:
            fetch_video(f"{base}/big.mp4", tmp_path, cfg)
        assert big.value.status == 413
        with pytest.raises(BadRequest, match=r"answered with a redirect \(HTTP 302\)"):
            fetch_video(f"{base}/moved", tmp_path, cfg)
        with pytest.raises(BadRequest, match="answered HTTP 404"):
            fetch_video(f"{base}/missing.mp4", tmp_path, cfg)
        port = base.rsplit(":", 1)[1]
        with pytest.raises(BadRequest, match=r"could not fetch the video \(InvalidURL\)"):
            fetch_video(f"http://127.0.0.1:{port}x/clip.mp4", tmp_path, cfg)
        with pytest.raises(BadRequest, match="not allowed"):
            fetch_video(f"{base}/clip.mp4", tmp_path, ServeConfig())  # no host listed


def test_the_platform_bucket_is_read(tmp_path, s3_env):
    store, _ = resolve("s3://platform")
    store.put_bytes("clips/v.mp4", VIDEO)
    cfg = ServeConfig(bucket="platform", max_upload_mb=1)
    assert fetch_video("s3://platform/clips/v.mp4", tmp_path, cfg).read_bytes() == VIDEO
    # Missing and over-sized objects get the same answer: nothing to learn about the bucket.
    store.put_bytes("clips/big.mp4", b"\0" * (2 * 2**20))
    for key in ("none.mp4", "big.mp4"):
        with pytest.raises(BadRequest, match="is not a readable video in the platform bucket"):
            fetch_video(f"s3://platform/clips/{key}", tmp_path, cfg)
