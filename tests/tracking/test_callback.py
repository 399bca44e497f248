"""MlflowTrainCallback during a tiny real ``transformers.Trainer`` run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from torch import nn
from torch.nn import functional as F
from transformers import Trainer, TrainerState, TrainingArguments

from videollm.tracking import step_run
from videollm.tracking.callback import LOSS_PLOT, MlflowTrainCallback

VOCAB = 16


class _TinyLM(nn.Module):
    """Embedding + linear head; enough for Trainer to compute a loss."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 8)
        self.head = nn.Linear(8, VOCAB)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.head(self.emb(input_ids))
        return {"loss": F.cross_entropy(logits.view(-1, VOCAB), labels.view(-1)), "logits": logits}


def _data(n: int = 16) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, VOCAB, (n, 6), generator=gen)
    return [{"input_ids": row, "labels": row} for row in ids]


def test_callback_logs_step_metrics_and_loss_plot(
    mlflow_server: str, mlflow_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sample system metrics fast enough to land inside a few-second run.
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.5")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "1")
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=5,
        logging_steps=1,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        include_num_input_tokens_seen=True,
    )
    trainer = Trainer(
        model=_TinyLM(), args=args, train_dataset=_data(), callbacks=[MlflowTrainCallback()]
    )
    with step_run("train", {"max_steps": 5}, log_system_metrics=True) as run:
        trainer.train()
    client = MlflowClient(mlflow_server)
    run_id = run.info.run_id
    loss = client.get_metric_history(run_id, "train/loss")
    assert [m.step for m in loss] == [1, 2, 3, 4, 5]
    for name in ("train/learning_rate", "train/grad_norm", "train/tokens_per_s"):
        history = client.get_metric_history(run_id, name)
        assert len(history) >= 4, name
    assert all(m.value > 0 for m in client.get_metric_history(run_id, "train/tokens_per_s"))
    assert LOSS_PLOT in {f.path for f in client.list_artifacts(run_id, "plots")}
    assert any(k.startswith("system/") for k in client.get_run(run_id).data.metrics)
    png = Path(client.download_artifacts(run_id, LOSS_PLOT, str(tmp_path)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_callback_is_silent_off_rank_zero(mlflow_server: str, mlflow_env: str) -> None:
    state = TrainerState(global_step=1)
    state.is_world_process_zero = False
    callback = MlflowTrainCallback()
    with step_run("train", {}) as run:
        callback.on_log(None, state, None, logs={"loss": 1.0})  # type: ignore[arg-type]
        callback.on_train_end(None, state, None)  # type: ignore[arg-type]
    client = MlflowClient(mlflow_server)
    assert client.get_run(run.info.run_id).data.metrics == {}
    assert client.list_artifacts(run.info.run_id) == []
