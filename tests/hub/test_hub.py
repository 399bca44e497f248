"""Base models from ``s3://`` mirrors: extract, train, chat and serve with no Hub, on real S3.

The tiny models are mirrored with the CLI; every step then names only the ``s3://`` prefixes,
and the Hub is switched off, so a Hub lookup anywhere would fail the test.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import huggingface_hub
import pytest
import torch

from videollm.cli.main import main
from videollm.errors import EXIT_CONFIG, ConfigError, StorageError
from videollm.features.encoder import VideoEncoder
from videollm.hub import model_source
from videollm.hub.cache import CACHE_SUBDIR
from videollm.hub.mirror import MANIFEST_NAME
from videollm.model.model_config import CONFIG_FILE
from videollm.serve.engine import Engine
from videollm.serve.serve_config import ServeConfig
from videollm.storage import S3Storage, storage_at, upload_dir


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No Hub, and a fresh HF_HOME; returns the mirror cache folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: set its constant too.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path / "hf" / CACHE_SUBDIR


@pytest.fixture
def mirrored(s3_env, tiny_llm_dir: Path, tiny_clip_dir: Path) -> dict[str, str]:
    """The tiny LLM and CLIP mirrored to fresh prefixes with ``videollm models mirror``."""
    uris = {"llm": s3_env.unique_uri("models/llm"), "clip": s3_env.unique_uri("models/clip")}
    assert main(["models", "mirror", str(tiny_llm_dir), uris["llm"]]) == 0
    assert main(["models", "mirror", str(tiny_clip_dir), uris["clip"]]) == 0
    return uris


@pytest.mark.slow
def test_every_step_loads_base_models_from_s3(
    mirrored, offline, colour_data, tiny_clip_dir, tmp_path, capsys
) -> None:
    videos = colour_data["videos"]
    assert main(["extract", "--videos", str(videos), "--out", str(tmp_path / "features"),
                 "--encoder", mirrored["clip"], "--num-frames", "8"]) == 0  # fmt: skip
    assert main(["train", "--config", "demo", "--records", str(colour_data["records"]),
                 "--features", str(tmp_path / "features"), "--llm", mirrored["llm"],
                 "--out", str(tmp_path / "ckpt"), "train.max_steps=1",
                 "model.train_mode=projector"]) == 0  # fmt: skip
    saved = json.loads((tmp_path / "ckpt" / CONFIG_FILE).read_text())
    assert saved["model"]["llm"] == mirrored["llm"]  # the checkpoint names the mirrors
    assert saved["extract"]["encoder"] == mirrored["clip"]

    # One cached copy per mirror, under $HF_HOME/videollm-s3/<bucket>/<prefix>@<content id>.
    copies = sorted(p for p in offline.rglob("*@*") if p.is_dir())
    assert len(copies) == 2
    for copy in copies:
        assert (copy / MANIFEST_NAME).is_file() and (copy / "config.json").is_file()
    assert not list(offline.rglob("*.tmp"))

    capsys.readouterr()
    video = str(sorted(videos.glob("*.mp4"))[0])
    assert main(["chat", "--checkpoint", str(tmp_path / "ckpt"), "--video", video,
                 "--question", "What colour?", "--max-new-tokens", "2"]) == 0  # fmt: skip
    assert capsys.readouterr().out.strip()

    # Serving loads the same checkpoint; its encoder is the mirrored one, weight for weight.
    engine = Engine(ServeConfig(checkpoint=str(tmp_path / "ckpt"), device="cpu"))
    local = VideoEncoder(str(tiny_clip_dir), device="cpu")
    frames = torch.randint(0, 255, (2, 40, 48, 3), dtype=torch.uint8)
    torch.testing.assert_close(engine.encoder.encode(frames), local.encode(frames))
    assert sorted(p for p in offline.rglob("*@*") if p.is_dir()) == copies  # reused


def test_ranks_starting_together_download_once(mirrored, offline, monkeypatch) -> None:
    opened: list[str] = []
    real_open = S3Storage.open
    lock = threading.Lock()

    def counting_open(self, key):
        with lock:
            opened.append(key)
        return real_open(self, key)

    monkeypatch.setattr(S3Storage, "open", counting_open)
    with ThreadPoolExecutor(4) as pool:
        folders = list(pool.map(lambda _: model_source(mirrored["llm"], "model.llm"), range(4)))
    assert len(set(folders)) == 1
    files = json.loads((Path(folders[0]) / MANIFEST_NAME).read_text())["files"]
    downloads = [k for k in opened if k != MANIFEST_NAME]
    assert sorted(downloads) == sorted(f["path"] for f in files)  # each file exactly once
    assert not list(offline.rglob("*.tmp"))


def test_a_file_changed_after_mirroring_is_refused(mirrored, offline) -> None:
    storage = storage_at(mirrored["clip"])
    data = storage.get_bytes("config.json")
    storage.put_bytes("config.json", data[:-1] + b" ")  # same size, other bytes
    with pytest.raises(StorageError, match=r"encoder: .*config\.json does not match its manifest"):
        model_source(mirrored["clip"], "encoder")
    assert not [p for p in offline.rglob("*") if p.is_dir() and "@" in p.name]  # nothing kept


def test_missing_or_unreadable_mirrors_name_the_setting(
    s3_env, offline, tiny_clip_dir, colour_data, tmp_path, monkeypatch, capsys
) -> None:
    unfinished = s3_env.unique_uri("models/unfinished")
    upload_dir(tiny_clip_dir, unfinished)  # files, but no manifest
    with pytest.raises(ConfigError, match=r"encoder: .* but no videollm-mirror\.json"):
        model_source(unfinished, "encoder")

    nowhere = "s3://no-such-bucket-hub/models/x"
    with pytest.raises(ConfigError, match=r"model\.llm: .*nothing is stored there"):
        model_source(nowhere, "model.llm")
    capsys.readouterr()
    assert main(["train", "--config", "demo", "--records", str(colour_data["records"]),
                 "--features", str(colour_data["features"]), "--llm", nowhere,
                 "--out", str(tmp_path / "ckpt")]) == EXIT_CONFIG  # fmt: skip
    err = capsys.readouterr().err
    assert "model.llm" in err and nowhere in err and "Traceback" not in err

    secret = "wrong-secret-key-123"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    with pytest.raises(StorageError) as refused:
        model_source(unfinished, "encoder")
    message = str(refused.value)
    assert message.startswith(f"encoder: cannot load the model mirror {unfinished}")
    assert "AWS_SECRET_ACCESS_KEY" in message and secret not in message
