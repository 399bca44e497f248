"""VideoLLM: splicing, trainable parameters, checkpoints."""

from __future__ import annotations

import pytest
import torch

from videollm.errors import CheckpointError, FeatureFormatError
from videollm.model.model_config import WEIGHTS_FILE, CheckpointConfig, ModelConfig
from videollm.model.video_llm import IGNORE_INDEX, VIDEO_TOKEN_INDEX, VideoLLM

DIM, TOKENS = 32, 6


def build(llm_dir, **kw) -> VideoLLM:
    cfg = CheckpointConfig(
        model=ModelConfig(llm=str(llm_dir), **kw), feature_dim=DIM, num_video_tokens=TOKENS
    )
    torch.manual_seed(0)
    return VideoLLM.build(cfg, device="cpu")


def batch(pad_id: int):
    ids = torch.tensor(
        [[1, 50, VIDEO_TOKEN_INDEX, 60, 70], [1, VIDEO_TOKEN_INDEX, 80, pad_id, pad_id]]
    )
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    labels = torch.tensor(
        [
            [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 60, 70],
            [IGNORE_INDEX] * 2 + [80] + [IGNORE_INDEX] * 2,
        ]
    )
    return ids, mask, labels, torch.randn(2, TOKENS, DIM)


@pytest.mark.parametrize("start_end", [False, True])
def test_features_are_spliced_at_the_placeholder(tiny_llm_dir, start_end):
    model = build(tiny_llm_dir, use_vid_start_end=start_end)
    ids, mask, labels, feats = batch(model.tokenizer.pad_token_id)
    embeds, m, lab = model.prepare_inputs(ids, mask, feats, labels)
    n_video = TOKENS + (2 if start_end else 0)
    assert embeds.shape[:2] == (2, 4 + n_video)
    video = model.embed_video(feats)
    torch.testing.assert_close(embeds[0, 2 : 2 + n_video], video[0])
    torch.testing.assert_close(embeds[1, 1 : 1 + n_video], video[1])
    # Row 1 is right-padded; labels on video positions are ignored.
    assert m[1].tolist() == [1] * (2 + n_video) + [0] * 2
    assert (lab[0, 2 : 2 + n_video] == IGNORE_INDEX).all()
    assert lab[0, -2:].tolist() == [60, 70]
    _, lm, _ = model.prepare_inputs(ids, mask, feats, None, padding_side="left")
    assert lm[1].tolist() == [0] * 2 + [1] * (2 + n_video)


def test_projector_mode_trains_only_the_projector(tiny_llm_dir):
    model = build(tiny_llm_dir)
    ids, mask, labels, feats = batch(model.tokenizer.pad_token_id)
    loss = model(ids, mask, feats, labels).loss
    loss.backward()
    trained = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trained == {"projector.weight", "projector.bias"}


def test_lora_mode_trains_lora_and_projector(tiny_llm_dir):
    model = build(tiny_llm_dir, train_mode="lora", projector="mlp2x_gelu")
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in names) and any(n.startswith("projector.") for n in names)
    assert not any("embed_tokens" in n for n in names)


def test_wrong_feature_batch_is_a_clear_error(tiny_llm_dir):
    model = build(tiny_llm_dir)
    ids, mask, labels, _ = batch(model.tokenizer.pad_token_id)
    with pytest.raises(FeatureFormatError, match="B×N×D"):
        model(ids, mask, torch.randn(3, TOKENS, DIM), labels)


@pytest.mark.parametrize("mode", ["projector", "lora"])
def test_checkpoint_round_trip_holds_only_trained_weights(tiny_llm_dir, tmp_path, mode):
    model = build(tiny_llm_dir, train_mode=mode, use_vid_start_end=True)
    with torch.no_grad():
        model.projector.weight.add_(1.0)
    model.save_checkpoint(tmp_path)
    from safetensors.torch import load_file

    stored = load_file(tmp_path / WEIGHTS_FILE)
    assert "projector.weight" in stored and "boundary.start" in stored
    assert not any("embed_tokens" in k for k in stored)
    assert all("lora_" in k for k in stored if k.startswith("llm."))
    again = VideoLLM.from_checkpoint(tmp_path, device="cpu")
    for key, value in stored.items():
        torch.testing.assert_close(again.state_dict()[key], value)
    ids, mask, labels, feats = batch(model.tokenizer.pad_token_id)
    model.eval()
    torch.testing.assert_close(
        model(ids, mask, feats, labels).loss, again(ids, mask, feats, labels).loss
    )


def test_checkpoint_errors_name_the_problem(tiny_llm_dir, tmp_path):
    with pytest.raises(CheckpointError, match=r"videollm_config\.json missing"):
        VideoLLM.from_checkpoint(tmp_path, device="cpu")
    model = build(tiny_llm_dir)
    model.save_checkpoint(tmp_path)
    from safetensors.torch import save_file

    save_file({"projector.weight": torch.zeros(1)}, str(tmp_path / WEIGHTS_FILE))
    with pytest.raises(CheckpointError, match="does not match"):
        VideoLLM.from_checkpoint(tmp_path, device="cpu")


def test_gradient_checkpointing_gives_the_same_gradients(tiny_llm_dir):
    model = build(tiny_llm_dir, train_mode="full")
    model.train()
    ids, mask, labels, feats = batch(model.tokenizer.pad_token_id)
    model(ids, mask, feats, labels).loss.backward()
    plain = model.projector.weight.grad.clone()
    model.zero_grad()
    model.activation_checkpointing_enable()
    assert model.llm.is_activation_checkpointing
    model(ids, mask, feats, labels).loss.backward()
    torch.testing.assert_close(model.projector.weight.grad, plain)
