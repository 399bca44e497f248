"""The projector registry, each projector's shapes and keys, and ``model.projector_options``."""

from __future__ import annotations

import json

import pytest
import torch

from videollm.errors import ConfigError
from videollm.model.model_config import CONFIG_FILE, CheckpointConfig, ModelConfig
from videollm.model.projector import PROJECTORS, Projector, build_projector
from videollm.model.video_llm import IGNORE_INDEX, VIDEO_TOKEN_INDEX, VideoLLM
from videollm.train.loop import load_train_config

DIM, HIDDEN = 32, 64
QFORMER = {"num_queries": 4, "num_heads": 4, "num_layers": 1}


def test_registry_lists_the_built_ins_with_summaries():
    assert PROJECTORS.names()[:3] == ["linear", "mlp2x_gelu", "qformer"]
    summaries = PROJECTORS.summaries()
    assert "Video-ChatGPT" in summaries["linear"] and "BLIP-2" in summaries["qformer"]
    assert all(issubclass(PROJECTORS.get(n), Projector) for n in PROJECTORS)


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("linear", ["weight", "bias"]),
        ("mlp2x_gelu", ["0.weight", "0.bias", "2.weight", "2.bias"]),
    ],
)
def test_per_token_projectors_keep_their_checkpoint_keys(name, keys):
    # Checkpoints written before the registry store projector.weight / projector.0.weight ….
    proj = build_projector(name, DIM, HIDDEN)
    assert list(proj.state_dict()) == keys
    assert proj(torch.randn(2, 7, DIM)).shape == (2, 7, HIDDEN)
    assert proj.num_output_tokens(7) == 7


@pytest.mark.parametrize("num_tokens", [5, 40])
def test_qformer_gives_num_queries_tokens_whatever_the_input(num_tokens):
    proj = build_projector("qformer", DIM, HIDDEN, QFORMER)
    out = proj(torch.randn(3, num_tokens, DIM))
    assert out.shape == (3, 4, HIDDEN) and proj.num_output_tokens(num_tokens) == 4
    # Different videos give different embeddings: the queries read the features.
    assert not torch.allclose(out[0], out[1])
    default = build_projector("qformer", DIM, HIDDEN)
    assert default.num_output_tokens(num_tokens) == 32


def test_qformer_width_differs_from_the_feature_width():
    proj = build_projector("qformer", DIM, HIDDEN, {**QFORMER, "width": 16})
    assert proj(torch.randn(1, 9, DIM)).shape == (1, 4, HIDDEN)
    assert proj.queries.shape == (4, 16)


@pytest.mark.parametrize(
    ("projector", "options", "message"),
    [
        ("nope", {}, r"model\.projector: unknown projector 'nope'; choose from linear"),
        ("qformer", {"queries": 3}, r"unknown config key model\.projector_options\.queries"),
        ("qformer", {"num_queries": 0}, r"model\.projector_options\.num_queries: must be >= 1"),
        ("qformer", {"dropout": 2.0}, r"model\.projector_options\.dropout: must be <= 1"),
        ("linear", {"num_queries": 3}, r"projector_options\.num_queries: .*takes no options"),
    ],
)
def test_bad_projector_settings_name_the_key(projector, options, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(projector=projector, projector_options=options)


def test_projector_options_come_from_recipe_overrides():
    overrides = ["model.projector=qformer", "model.projector_options.num_queries=8"]
    cfg = load_train_config("demo", overrides, {})
    assert cfg.model.projector_options == {"num_queries": 8}
    with pytest.raises(ConfigError, match=r"^model\.projector_options: unknown config key"):
        load_train_config("demo", [*overrides, "model.projector_options.nope=1"], {})


def test_heads_that_do_not_divide_the_width_are_refused():
    with pytest.raises(ConfigError, match=r"num_heads: 5 does not divide the query width 32"):
        build_projector("qformer", DIM, HIDDEN, {"num_heads": 5})


def _qformer_model(llm_dir, **kw) -> VideoLLM:
    cfg = CheckpointConfig(
        model=ModelConfig(llm=str(llm_dir), projector="qformer", projector_options=QFORMER, **kw),
        feature_dim=DIM,
        num_video_tokens=6,
    )
    torch.manual_seed(0)
    return VideoLLM.build(cfg, device="cpu")


def test_qformer_splices_num_queries_positions(tiny_llm_dir):
    model = _qformer_model(tiny_llm_dir, use_vid_start_end=True)
    assert model.num_video_positions() == 4 + 2
    ids = torch.tensor([[1, 50, VIDEO_TOKEN_INDEX, 60, 70]])
    labels = torch.tensor([[IGNORE_INDEX] * 3 + [60, 70]])
    embeds, mask, lab = model.prepare_inputs(
        ids, torch.ones_like(ids), torch.randn(1, 6, DIM), labels
    )
    assert embeds.shape[1] == 4 + model.num_video_positions() == mask.sum()
    assert (lab[0, 2:8] == IGNORE_INDEX).all() and lab[0, -2:].tolist() == [60, 70]


def test_projector_mode_trains_every_qformer_parameter_and_nothing_else(tiny_llm_dir):
    model = _qformer_model(tiny_llm_dir)
    ids = torch.tensor([[1, VIDEO_TOKEN_INDEX, 60, 70]])
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 60, 70]])
    model(ids, torch.ones_like(ids), torch.randn(1, 6, DIM), labels).loss.backward()
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    projector = {f"projector.{n}" for n, _ in model.projector.named_parameters()}
    assert trained == with_grad == projector
    assert "projector.queries" in projector and len(projector) > 10
    assert set(model.trained_state_dict()) == projector


def test_a_checkpoint_from_before_projector_options_loads(tiny_llm_dir, tmp_path):
    cfg = CheckpointConfig(
        model=ModelConfig(llm=str(tiny_llm_dir), projector="mlp2x_gelu"),
        feature_dim=DIM,
        num_video_tokens=6,
    )
    VideoLLM.build(cfg, device="cpu").save_checkpoint(tmp_path)
    path = tmp_path / CONFIG_FILE
    old = json.loads(path.read_text())
    del old["model"]["projector_options"]
    path.write_text(json.dumps(old))
    again = VideoLLM.from_checkpoint(tmp_path, device="cpu")
    assert again.checkpoint_config.model.projector_options == {}
    assert "projector.2.weight" in again.trained_state_dict()
