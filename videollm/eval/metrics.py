"""One flat dict of metrics for a list of predictions — what ``evaluate`` logs to MLflow and KFP."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from videollm.eval.judge import JudgeConfig, judge_predictions
from videollm.eval.segmentation_metrics import segmentation_scores
from videollm.eval.text_metrics import bleu4, cider, exact_match, mean_rouge_l, token_f1

logger = logging.getLogger(__name__)

SEGMENTATION_TASK = "segmentation"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _segmentation(rows: list[dict[str, Any]]) -> dict[str, float]:
    per_key: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        try:
            scores = segmentation_scores(str(row["pred"]), str(row["answer"]))
        except ValueError as err:
            # A malformed reference is a data bug, not a model error: skip it, loudly.
            logger.warning("skipping segmentation row %s: %s", row.get("id"), err)
            continue
        for key, value in scores.items():
            per_key[key].append(value)
    return {f"seg_{key}": _mean(values) for key, values in per_key.items()}


def compute_metrics(
    predictions: Sequence[dict[str, Any]],
    judge: JudgeConfig | None = None,
    judge_criteria: Sequence[str] = ("qa",),
) -> dict[str, float]:
    """Score predictions against their reference answers.

    Args:
        predictions: Rows ``{"id", "question", "answer", "pred"}`` with an optional ``"task"``
            (e.g. ``"qa"``, ``"caption"``, ``"segmentation"``).
        judge: Optional LLM judge; when given with a URL its metrics
            (:func:`~videollm.eval.judge.judge_predictions`) are merged in.
        judge_criteria: Criteria passed to the judge.

    Returns:
        A flat dict of floats:

        * ``count`` — number of rows;
        * ``exact_match``, ``token_f1``, ``rouge_l`` (means in 0..1), ``bleu4`` (corpus, 0..1)
          and ``cider`` (corpus CIDEr-D, 0..10) over all rows;
        * ``em/<task>`` — exact match per task, for rows that name a task;
        * ``seg_mof``, ``seg_edit``, ``seg_f1@10``, ``seg_f1@25``, ``seg_f1@50`` — per-video
          segmentation scores (0..1) averaged over ``task == "segmentation"`` rows, present
          only when such rows exist;
        * ``judge_*`` keys when ``judge`` is enabled.
    """
    preds = [str(row.get("pred") or "") for row in predictions]
    refs = [str(row.get("answer") or "") for row in predictions]
    ems = [exact_match(p, r) for p, r in zip(preds, refs, strict=True)]
    out: dict[str, float] = {
        "count": float(len(predictions)),
        "exact_match": _mean(ems),
        "token_f1": _mean([token_f1(p, r) for p, r in zip(preds, refs, strict=True)]),
        "bleu4": bleu4(preds, refs),
        "rouge_l": mean_rouge_l(preds, refs),
        "cider": cider(preds, refs),
    }
    by_task: dict[str, list[float]] = defaultdict(list)
    for row, em in zip(predictions, ems, strict=True):
        if row.get("task"):
            by_task[str(row["task"])].append(em)
    for task, values in sorted(by_task.items()):
        out[f"em/{task}"] = _mean(values)
    seg_rows = [row for row in predictions if row.get("task") == SEGMENTATION_TASK]
    if seg_rows:
        out.update(_segmentation(seg_rows))
    if judge is not None and judge.url is not None:
        out.update(judge_predictions(predictions, judge, judge_criteria))
    return out
