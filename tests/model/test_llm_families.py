"""Each supported LLM family (tiny random configs) trains, round-trips and chats."""

from __future__ import annotations

import pytest
import torch
from model_scoring import colour_accuracy
from safetensors.torch import load_file

from videollm.chat import chat
from videollm.data.records import read_records
from videollm.demo.tiny_models import LLM_FAMILIES, build_tiny_llm
from videollm.eval.generate import GenerationArgs
from videollm.model.model_config import WEIGHTS_FILE
from videollm.model.video_llm import VideoLLM
from videollm.train.loop import load_train_config, train


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(LLM_FAMILIES))
def test_family_trains_round_trips_and_chats(family, colour_data, tmp_path):
    llm = build_tiny_llm(tmp_path / "llm", family=family)
    flags = {
        "records": str(colour_data["records"]),
        "features": str(colour_data["features"]),
        "out": str(tmp_path / "ckpt"),
        "model": {"llm": str(llm)},
    }
    # The tokenizer's own chat template, as real Qwen2 / Mistral checkpoints are used.
    overrides = ["model.template=chat_template", "train.epochs=8"]
    result = train(load_train_config("demo", overrides, flags))
    assert result.last_loss < 0.5 * result.first_loss, result

    model = VideoLLM.from_checkpoint(tmp_path / "ckpt", device="cpu")
    assert type(model.llm) is LLM_FAMILIES[family][1]
    # The checkpoint (safetensors) holds the trained LLM and projector; loading restores both.
    stored = load_file(tmp_path / "ckpt" / WEIGHTS_FILE)
    own = model.state_dict()
    assert any(k.startswith("llm.") for k in stored) and "projector.weight" in stored
    for key, value in stored.items():
        torch.testing.assert_close(own[key], value)
    val = read_records(colour_data["records"] / "val.jsonl")
    assert colour_accuracy(model, val, colour_data["features"]) >= 0.8

    video = next(colour_data["videos"].glob("green_*.mp4"))
    args = GenerationArgs(max_new_tokens=4)
    answer = chat(tmp_path / "ckpt", video, "What colour is the video?", generation=args,
                  device="cpu", model=model)  # fmt: skip
    assert answer == "green"
