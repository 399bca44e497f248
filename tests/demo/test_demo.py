"""``videollm demo`` runs every step offline and the trained model answers correctly."""

from __future__ import annotations

from pathlib import Path

import pytest

from videollm.demo.run import run_demo


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.delenv("VIDEOLLM_ENCODER", raising=False)
    monkeypatch.delenv("VIDEOLLM_LLM", raising=False)
    summary = run_demo(tmp_path, n_per_class=4)
    for key in ("videos", "features", "records", "checkpoint"):
        assert Path(summary[key]).exists()
    assert (Path(summary["eval"]["dir"]) / "predictions.jsonl").is_file()
    assert summary["train"]["last_loss"] < summary["train"]["first_loss"]
    assert summary["chat"]["answer"] == summary["chat"]["truth"]
    assert summary["champion"].startswith("models:/videollm@champion (version ")
