"""The model learns: loss falls and validation accuracy beats the untrained model."""

from __future__ import annotations

import json

import pytest

from videollm.eval.evaluate import EvalConfig, evaluate
from videollm.model.model_config import CheckpointConfig
from videollm.model.video_llm import VideoLLM
from videollm.train.loop import SUMMARY_FILE, load_train_config, train


def _flags(data, llm, out):
    return {
        "records": str(data["records"]),
        "features": str(data["features"]),
        "out": str(out),
        "model": {"llm": str(llm)},
    }


def _evaluate(ckpt, data, out):
    cfg = EvalConfig(
        checkpoint=str(ckpt),
        records=str(data["records"] / "val.jsonl"),
        features=str(data["features"]),
        out=str(out),
    )
    cfg.generation.max_new_tokens = 8
    return evaluate(cfg)


@pytest.mark.slow
def test_training_learns_the_colour(colour_data, tiny_llm_dir, tmp_path):
    cfg = load_train_config("demo", [], flags=_flags(colour_data, tiny_llm_dir, tmp_path / "ckpt"))
    result = train(cfg)

    # Untrained baseline: the same architecture with a fresh projector.
    ckpt_cfg = CheckpointConfig.load(tmp_path / "ckpt")
    VideoLLM.build(ckpt_cfg, device="cpu").save_checkpoint(tmp_path / "untrained")
    before = _evaluate(tmp_path / "untrained", colour_data, tmp_path / "eval0")
    after = _evaluate(tmp_path / "ckpt", colour_data, tmp_path / "eval1")

    assert result.global_step == result.expected_steps
    assert result.last_loss < 0.5 * result.first_loss
    assert after["exact_match"] >= 0.8, after
    assert after["exact_match"] >= before["exact_match"] + 0.5, (before, after)

    rows = [
        json.loads(line)
        for line in (tmp_path / "eval1" / "predictions.jsonl").read_text().splitlines()
    ]
    assert {"id", "question", "answer", "pred", "task"} <= set(rows[0])
    assert len(rows) == 6
    summary = json.loads((tmp_path / "ckpt" / SUMMARY_FILE).read_text())
    assert summary["config"]["model"]["llm"] == str(tiny_llm_dir)
