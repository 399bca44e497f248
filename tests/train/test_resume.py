"""Resuming picks the newest checkpoint that was saved completely."""

from __future__ import annotations

from pathlib import Path

from videollm.model.model_config import CONFIG_FILE, WEIGHTS_FILE
from videollm.train.loop import last_complete_checkpoint


def _checkpoint(out: Path, step: int, files: dict[str, str]) -> Path:
    folder = out / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


COMPLETE = {WEIGHTS_FILE: "w", CONFIG_FILE: "{}", "trainer_state.json": "{}"}


def test_a_half_saved_checkpoint_is_set_aside(tmp_path):
    _checkpoint(tmp_path, 2, COMPLETE)
    _checkpoint(tmp_path, 10, COMPLETE)
    _checkpoint(tmp_path, 11, {WEIGHTS_FILE: "w", "trainer_state.json": '{"glo'})  # torn state
    _checkpoint(tmp_path, 12, {CONFIG_FILE: "{}"})  # killed before the weights
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".incomplete-checkpoint-11", ".incomplete-checkpoint-12", "checkpoint-10", "checkpoint-2",
    ]  # fmt: skip
    assert (tmp_path / ".incomplete-checkpoint-12" / CONFIG_FILE).is_file()  # kept, not deleted


def test_no_checkpoint_means_a_fresh_start(tmp_path):
    assert last_complete_checkpoint(tmp_path / "missing") is None
    _checkpoint(tmp_path, 1, {WEIGHTS_FILE: "w"})
    assert last_complete_checkpoint(tmp_path) is None
