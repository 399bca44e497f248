"""A ``transformers`` callback that records the training curve into the active MLflow run.

The caller opens the run (``step_run("train", cfg, log_system_metrics=True)``); this callback
only logs into it, and only on the main process, so N ranks do not write N copies.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

log = logging.getLogger(__name__)

LOSS_PLOT = "plots/loss.png"
# Trainer's on_log keys → our metric names.
_KEYS = {
    "loss": "train/loss",
    "learning_rate": "train/learning_rate",
    "grad_norm": "train/grad_norm",
}


def plot_loss(steps: list[int], losses: list[float], path: Path) -> Path:
    """Draw a loss-vs-step PNG at ``path`` with matplotlib's non-GUI backend.

    Args:
        steps: global steps.
        losses: loss at each step.
        path: output PNG file.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")  # Headless: no display on cluster nodes or CI.
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    try:
        ax.plot(steps, losses, marker="." if len(steps) < 50 else None)
        ax.set_xlabel("step")
        ax.set_ylabel("train loss")
        ax.set_title("Training loss")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


class MlflowTrainCallback(TrainerCallback):
    """Log ``train/loss``, ``train/learning_rate``, ``train/grad_norm``, ``train/tokens_per_s``.

    Metrics carry ``step=state.global_step``. Throughput is the growth of
    ``state.num_input_tokens_seen`` (set ``include_num_input_tokens_seen=True`` in the
    training arguments) over wall time between two logs. At train end the loss curve is
    logged as artifact ``plots/loss.png``. Assumes an active MLflow run.
    """

    def __init__(self) -> None:
        self._steps: list[int] = []
        self._losses: list[float] = []
        self._last_time: float | None = None
        self._last_tokens = 0

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        """Reset the curve and start the throughput clock."""
        self._steps, self._losses = [], []
        self._last_time = time.perf_counter()
        self._last_tokens = int(state.num_input_tokens_seen or 0)

    def _tokens_per_s(self, state: TrainerState) -> float | None:
        now = time.perf_counter()
        tokens = int(state.num_input_tokens_seen or 0)
        rate = None
        if self._last_time is not None and tokens > self._last_tokens and now > self._last_time:
            rate = (tokens - self._last_tokens) / (now - self._last_time)
        self._last_time, self._last_tokens = now, tokens
        return rate

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Log the step's scalars (main process only)."""
        if not state.is_world_process_zero or not logs:
            return
        if mlflow.active_run() is None:
            log.warning("MlflowTrainCallback: no active MLflow run; metrics not logged")
            return
        metrics: dict[str, float] = {}
        for key, name in _KEYS.items():
            value = logs.get(key)
            if isinstance(value, int | float):
                metrics[name] = float(value)
        rate = self._tokens_per_s(state)
        if rate is not None:
            metrics["train/tokens_per_s"] = rate
        if "train/loss" in metrics:
            self._steps.append(state.global_step)
            self._losses.append(metrics["train/loss"])
        if metrics:
            mlflow.log_metrics(metrics, step=state.global_step)

    def on_train_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        """Log the loss curve PNG as ``plots/loss.png`` (main process only)."""
        if not state.is_world_process_zero or not self._losses or mlflow.active_run() is None:
            return
        with tempfile.TemporaryDirectory() as tmp:
            png = plot_loss(self._steps, self._losses, Path(tmp) / Path(LOSS_PLOT).name)
            mlflow.log_artifact(str(png), artifact_path=str(Path(LOSS_PLOT).parent))
