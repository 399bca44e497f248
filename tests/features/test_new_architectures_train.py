"""The new encoders and poolings end to end: extract with them, train (the loss falls and the
model answers), and the checkpoint answers the same through ``chat`` and the serving engine,
which re-extract the video the way the checkpoint records."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors import safe_open

from videollm.chat import chat
from videollm.data.convert import ConvertConfig, convert
from videollm.demo.run import COLOUR_QUESTION
from videollm.eval.evaluate import EvalConfig, evaluate
from videollm.eval.generate import GenerationArgs
from videollm.features.extract import ExtractConfig, extract
from videollm.model.model_config import CheckpointConfig
from videollm.serve.engine import Engine
from videollm.serve.launch import ModelSource
from videollm.serve.serve_config import ServeConfig
from videollm.train.loop import load_train_config, train

CASES = {
    # SigLIP has no CLS token: all 16 patches stay, pooled to 4 tokens per frame.
    "siglip-per_frame": ("tiny_siglip_dir", "per_frame", {"tokens_per_frame": 4}, 8 * 4),
    # DINOv2 with registers (the generic family): CLS + 2 registers dropped, 16 patches left.
    "dinov2-adaptive3d": ("tiny_dinov2_dir", "adaptive3d", {"pool_size": [2, 2, 2]}, 8),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_extract_train_chat_and_serve(case, colour_data, tiny_llm_dir, tmp_path, request):
    encoder_fixture, pooling, options, tokens = CASES[case]
    encoder = request.getfixturevalue(encoder_fixture)
    cfg = ExtractConfig(
        encoder=str(encoder), num_frames=8, pooling=pooling, pooling_options=options
    )
    features = tmp_path / "features"
    assert extract(colour_data["videos"], features, cfg).failed == 0
    first = next(features.glob("*.safetensors"))
    with safe_open(str(first), "pt") as f:
        assert f.get_tensor("features").shape == (tokens, 32)
        assert f.metadata()["pooling"] == pooling

    records = tmp_path / "records"
    annotations = colour_data["root"] / "annotations.jsonl"
    convert(ConvertConfig(format="jsonl", input=str(annotations), out=str(records)))
    flags = {
        "records": str(records),
        "features": str(features),
        "out": str(tmp_path / "ckpt"),
        "model": {"llm": str(tiny_llm_dir)},
    }
    result = train(load_train_config("demo", ["train.epochs=12"], flags))
    assert result.last_loss < 0.5 * result.first_loss, result
    recorded = CheckpointConfig.load(tmp_path / "ckpt").extract
    assert recorded["pooling"] == pooling and recorded["encoder"] == str(encoder)

    evaluation = EvalConfig(
        checkpoint=str(tmp_path / "ckpt"),
        records=str(records / "val.jsonl"),
        features=str(features),
        out=str(tmp_path / "eval"),
    )
    evaluation.generation.max_new_tokens = 4
    assert evaluate(evaluation)["exact_match"] >= 0.8

    # chat and the engine decode and pool the raw video again, as the checkpoint says.
    args = GenerationArgs(max_new_tokens=4)
    for colour in ("red", "blue"):
        video = next(Path(colour_data["videos"]).glob(f"{colour}_*.mp4"))
        answer = chat(tmp_path / "ckpt", video, COLOUR_QUESTION, generation=args, device="cpu")
        assert answer.strip() == colour
        engine = Engine(ServeConfig(device="cpu"), ModelSource(tmp_path / "ckpt", case))
        assert engine.answer_video(video, COLOUR_QUESTION, None, args).answer == answer
