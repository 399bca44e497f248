"""``videollm select`` and ``videollm runs compare`` over real training + evaluation runs."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from videollm.cli.main import main


def _train_and_evaluate(data, llm, out, epochs: int) -> None:
    common = ["--features", str(data["features"])]
    assert (
        main(
            [
                "train",
                "--config",
                "demo",
                "--records",
                str(data["records"]),
                *common,
                "--llm",
                str(llm),
                "--out",
                str(out),
                f"train.epochs={epochs}",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(out),
                "--records",
                str(data["records"] / "val.jsonl"),
                *common,
                "--out",
                str(out) + "-eval",
                "generation.max_new_tokens=8",
            ]
        )
        == 0
    )


@pytest.mark.slow
def test_select_promotes_the_better_run_and_never_demotes(
    colour_data, tiny_llm_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "select-cli")
    select = [
        "select",
        "--experiment",
        "select-cli",
        "--model-name",
        "colour",
        "--metric",
        "val/exact_match",
    ]
    _train_and_evaluate(colour_data, tiny_llm_dir, tmp_path / "weak", epochs=1)
    _train_and_evaluate(colour_data, tiny_llm_dir, tmp_path / "strong", epochs=20)
    assert main(select) == 0
    champion = MlflowClient().get_model_version_by_alias("colour", "champion")
    assert champion.source == str(tmp_path / "strong")

    _train_and_evaluate(colour_data, tiny_llm_dir, tmp_path / "weak2", epochs=1)
    capsys.readouterr()
    assert main(select) == 0
    out = capsys.readouterr().out
    assert "kept" in out and "val/exact_match" in out
    assert MlflowClient().get_model_version_by_alias("colour", "champion").source == str(
        tmp_path / "strong"
    )

    assert main(["runs", "compare", "--experiment", "select-cli"]) == 0
    table = capsys.readouterr().out
    assert "val/exact_match" in table and "optim.lr" in table
