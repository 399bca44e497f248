"""Recipe loading, presets, batch arithmetic and the shipped DeepSpeed configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from videollm.errors import ConfigError
from videollm.train.loop import deepspeed_config, load_train_config
from videollm.train.train_config import grad_accumulation, optimizer_steps


def test_videochatgpt_preset_is_the_published_recipe():
    cfg = load_train_config("videochatgpt_7b", [], flags={})
    assert cfg.model.train_mode == "projector" and cfg.model.projector == "linear"
    assert cfg.optim.lr == 2e-5 and cfg.train.epochs == 3
    assert cfg.train.global_batch_size == 32 and cfg.model.max_length == 2048


def test_breakfast_preset_and_precedence(tmp_path):
    cfg = load_train_config("breakfast", ["optim.lr=1e-3"], flags={"out": str(tmp_path)})
    assert cfg.optim.lr == 1e-3 and cfg.out == str(tmp_path)
    assert load_train_config("breakfast", [], flags={}).optim.lr == 2e-4


def test_unknown_recipe_and_bad_values_are_clear():
    with pytest.raises(ConfigError, match="neither a file nor a shipped preset"):
        load_train_config("nope", [], flags={})
    with pytest.raises(ConfigError, match=r"model\.train_mode"):
        load_train_config("demo", ["model.train_mode=everything"], flags={})
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        load_train_config("demo", ["train.epochs=many"], flags={})


@pytest.mark.parametrize(
    ("n", "epochs", "micro", "world", "accum", "steps"),
    [(18, 2, 1, 2, 2, 10), (18, 1, 4, 1, 1, 5), (32, 3, 4, 8, 1, 3), (10, 1.5, 2, 1, 2, 5)],
)
def test_optimizer_steps_formula(n, epochs, micro, world, accum, steps):
    assert optimizer_steps(n, epochs, micro, world, accum) == steps


def test_grad_accumulation_must_divide():
    assert grad_accumulation(32, 4, 2) == 4
    with pytest.raises(ValueError, match="not a multiple"):
        grad_accumulation(32, 3, 2)


@pytest.mark.parametrize("stage", [2, 3])
def test_shipped_deepspeed_configs(stage):
    cfg = json.loads(Path(deepspeed_config(f"zero{stage}")).read_text())
    assert cfg["zero_optimization"]["stage"] == stage
    assert cfg["train_micro_batch_size_per_gpu"] == "auto"
    with pytest.raises(ConfigError, match="zero4"):
        deepspeed_config("zero4")


def test_a_folder_named_like_a_preset_does_not_shadow_it(tmp_path, monkeypatch):
    (tmp_path / "demo").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_train_config("demo", [], flags={}).model.train_mode == "full"
