"""A ``qformer`` projector trained alone (``projector`` mode) learns the colour, and its
checkpoint answers the same through ``chat``, the serving engine and a real server."""

from __future__ import annotations

import httpx
import pytest
import torch
from bento_server import TOKEN, start_server, stop_server
from model_scoring import colour_accuracy

from videollm.chat import chat
from videollm.data.records import read_records
from videollm.eval.generate import GenerationArgs
from videollm.model.model_config import CheckpointConfig
from videollm.model.video_llm import VideoLLM
from videollm.serve.engine import Engine
from videollm.serve.launch import ModelSource
from videollm.serve.serve_config import ServeConfig
from videollm.train.loop import load_train_config, train

QUESTION = "What colour is the video?"
OVERRIDES = [
    "model.train_mode=projector",
    "model.projector=qformer",
    "model.projector_options={num_queries: 8, num_heads: 4}",
    "train.epochs=8",
]


@pytest.mark.slow
def test_qformer_learns_alone_and_round_trips(colour_data, steerable_llm_dir, tmp_path):
    flags = {
        "records": str(colour_data["records"]),
        "features": str(colour_data["features"]),
        "out": str(tmp_path / "ckpt"),
        "model": {"llm": str(steerable_llm_dir)},
    }
    result = train(load_train_config("demo", OVERRIDES, flags))
    assert result.global_step == result.expected_steps == 40
    assert result.last_loss < 0.9 * result.first_loss, result

    val = read_records(colour_data["records"] / "val.jsonl")
    trained = VideoLLM.from_checkpoint(tmp_path / "ckpt", device="cpu")
    assert trained.num_video_positions() == 8
    torch.manual_seed(1)
    untrained = VideoLLM.build(CheckpointConfig.load(tmp_path / "ckpt"), device="cpu")
    before = colour_accuracy(untrained, val, colour_data["features"])
    after = colour_accuracy(trained, val, colour_data["features"])
    assert after >= 0.8 and after >= before + 0.3, (before, after)

    # The same greedy answer from chat, the engine and the HTTP server.
    video = next(colour_data["videos"].glob("red_*.mp4"))
    args = GenerationArgs(max_new_tokens=4)
    answer = chat(tmp_path / "ckpt", video, QUESTION, generation=args, device="cpu")
    assert isinstance(answer, str)
    engine = Engine(ServeConfig(device="cpu"), ModelSource(tmp_path / "ckpt", "qformer"))
    assert engine.answer_video(video, QUESTION, None, args).answer == answer
    env = {"VIDEOLLM_CHECKPOINT": str(tmp_path / "ckpt"), "VIDEOLLM_API_TOKEN": TOKEN}
    (tmp_path / "bento").mkdir()
    server = start_server(tmp_path / "bento", env)
    try:
        response = httpx.post(
            f"{server.url}/chat",
            data={"question": QUESTION, "max_new_tokens": "4"},
            files={"video": (video.name, video.read_bytes(), "video/mp4")},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=60,
        )
    finally:
        stop_server(server)
    assert response.status_code == 200, response.text
    assert response.json()["answer"] == answer
