"""``videollm demo``: the whole flow on one machine, offline.

Builds tiny random CLIP and Llama models (or uses ``VIDEOLLM_ENCODER`` / ``VIDEOLLM_LLM`` when
set to real ones), writes synthetic videos whose background colour is the answer, then runs
the ``finetune`` pipeline through ``kfp.local`` (plan → 2 extract shards → convert → train →
evaluate → select → package), asks the champion one question and reports where everything went.
Each step is recorded in MLflow (``MLFLOW_TRACKING_URI``, else ``mlflow.db`` in ``out``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from videollm.chat import chat
from videollm.demo.tiny_models import build_tiny_clip, build_tiny_llm
from videollm.demo.videos import SyntheticVideo, make_synthetic_videos
from videollm.video.paths import video_id

logger = logging.getLogger(__name__)

COLOUR_QUESTION = "What colour is the video?"


def write_colour_annotations(videos: list[SyntheticVideo], root: Path, path: Path) -> Path:
    """Generic-JSONL annotations: one colour question per synthetic video."""
    lines = [
        json.dumps(
            {"video": video_id(v.path, root), "question": COLOUR_QUESTION, "answer": v.colour}
        )
        for v in videos
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_demo(
    out: str | Path, n_per_class: int = 8, overrides: list[str] | None = None
) -> dict[str, Any]:
    """Build the inputs, run the ``finetune`` pipeline locally, ask the champion one question.

    Args:
        out: Folder for models, videos, the pipeline's outputs and MLflow's database.
        n_per_class: Synthetic videos per colour.
        overrides: Extra ``key=value`` overrides for the ``demo`` training recipe.

    Returns:
        Where everything went, the champion, its metrics and its answer.
    """
    from videollm.kfp.runner import run_local
    from videollm.kfp.work_dirs import features_dir, records_dir
    from videollm.tracking.lookup import champion_summary, latest_trained_run

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # The registry lives with the outputs it points at: deleting ``out`` starts over instead
    # of leaving a champion whose checkpoint is gone.
    own_store = not os.environ.get("MLFLOW_TRACKING_URI")
    if own_store:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{out / 'mlflow.db'}"
    encoder = os.environ.get("VIDEOLLM_ENCODER") or str(build_tiny_clip(out / "models" / "clip"))
    llm = os.environ.get("VIDEOLLM_LLM") or str(build_tiny_llm(out / "models" / "llm"))
    real = "VIDEOLLM_ENCODER" in os.environ

    videos_dir = out / "videos"
    videos = make_synthetic_videos(videos_dir, n_per_class=n_per_class)
    annotations = write_colour_annotations(videos, videos_dir, out / "annotations.jsonl")
    params = {
        "videos_uri": str(videos_dir), "annotations_uri": str(annotations),
        "annotation_format": "jsonl", "encoder": encoder, "llm": llm, "recipe": "demo",
        "num_frames": 100 if real else 8, "num_shards": 2, "val_fraction": 0.25,
        "train_overrides": list(overrides or []), "select_metric": "val/exact_match",
        "registered_model_name": "videollm",
    }  # fmt: skip
    run = run_local("finetune", params, out)
    # This run's outputs; the champion is this run's model only if it beat the one before.
    trained = latest_trained_run("videollm")
    champion = champion_summary("videollm")
    ckpt = Path(trained["checkpoint"])
    metrics = json.loads((ckpt.parent / "eval" / "metrics.json").read_text())["metrics"]
    answer = chat(Path(champion["checkpoint"]), videos[0].path, COLOUR_QUESTION)
    env = f"MLFLOW_TRACKING_URI={run.tracking_uri} " if own_store else ""
    return {
        "models": {"encoder": encoder, "llm": llm},
        "videos": str(videos_dir),
        "pipeline_root": str(run.pipeline_root),
        # The same keys the extract and convert tasks computed from these parameters.
        "features": features_dir(
            run.work_uri, params["videos_uri"], params["encoder"], params["num_frames"]
        ),
        "records": records_dir(
            run.work_uri,
            params["annotations_uri"],
            params["annotation_format"],
            params["num_frames"],
            params["val_fraction"],
        ),
        "checkpoint": str(ckpt),
        "eval": {"dir": str(ckpt.parent / "eval"), "metrics": metrics},
        "mlflow": run.tracking_uri,
        "mlflow_run": f"{trained['run_name']} ({trained['run_id']})",
        "champion": f"{champion['model_uri']} (version {champion['version']})",
        "champion_is_this_run": champion["run_id"] == trained["run_id"],
        "serve": f"{env}videollm serve --model-uri {champion['model_uri']} --port 3000",
        "ask": (
            f'curl -F "video=@{videos[0].path};type=video/mp4" '
            f'-F "question={COLOUR_QUESTION}" http://127.0.0.1:3000/chat'
        ),
        "chat": {
            "video": str(videos[0].path),
            "question": COLOUR_QUESTION,
            "answer": answer,
            "truth": videos[0].colour,
        },
    }
