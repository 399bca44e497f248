"""Put a benchmark's questions to the model scored: a checkpoint, or a served model.

A checkpoint answers from features, made once per videos folder and extraction settings under
``features_root/<key>`` (extraction skips videos already there, so a second model with the
same encoder, or a re-run, extracts nothing). A served model is sent the video files
(:mod:`videollm.eval.endpoint`). Both get the same prompts: the question, or for multiple
choice the question with lettered options (:func:`videollm.bench.choice.choice_prompt`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from videollm.bench.choice import choice_prompt
from videollm.config_loader import from_dict
from videollm.data.records import video_ref_to_id
from videollm.data.tokenize import VIDEO_PLACEHOLDER
from videollm.eval.endpoint import EndpointConfig, answer_with_endpoint
from videollm.eval.generate import GenerationArgs, generate_answers
from videollm.features.extract import extract
from videollm.features.extract_config import ExtractConfig
from videollm.features.store import feature_path, load_features
from videollm.storage import join
from videollm.storage.staging import stage_in, stage_out
from videollm.video.paths import list_videos

logger = logging.getLogger(__name__)

#: Suffix of the id of a consistency item's second question.
SECOND = "#2"
# Settings that change what a feature file holds; the others (workers, batch) do not.
_FEATURE_KEYS = ("encoder", "layer", "num_frames", "pooling", "pooling_options", "resize_shortest")


def asks_of(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One question to put to the model per item, two for a consistency pair.

    Returns:
        ``{"id", "video", "prompt"}`` dicts, ``prompt`` a one-turn conversation with the video
        placeholder, as :func:`videollm.eval.evaluate.questions_of` makes them.
    """
    asks = []
    for item in items:
        text = item["question"]
        if "options" in item:
            text = choice_prompt(text, item["options"])
        asks.append(_ask(item["id"], item["video"], text))
        if "question2" in item:
            asks.append(_ask(item["id"] + SECOND, item["video"], item["question2"]))
    return asks


def _ask(ask_id: str, video: str, text: str) -> dict[str, Any]:
    prompt = [{"from": "human", "value": f"{VIDEO_PLACEHOLDER}\n{text}"}]
    return {"id": ask_id, "video": video, "prompt": prompt}


def rows_of(items: Sequence[dict[str, Any]], preds: dict[str, str]) -> list[dict[str, Any]]:
    """Prediction rows (the items with ``pred``, and ``pred2`` for a consistency pair)."""
    rows = []
    for item in items:
        row = dict(item) | {"pred": preds[item["id"]]}
        if "question2" in item:
            row["pred2"] = preds[item["id"] + SECOND]
        rows.append(row)
    return rows


def stage_videos(uri: str, needed: set[str]) -> Path:
    """The benchmark's videos folder, local; from ``s3://`` only the ``needed`` videos."""
    return stage_in(uri, keep=lambda rel: video_ref_to_id(rel) in needed)


def available(videos: Path, needed: set[str]) -> dict[str, Path]:
    """Needed video id → file, for the needed videos that are in the folder."""
    return {vid: path for vid, path in list_videos(videos) if vid in needed}


def features_key(videos_uri: str, cfg: ExtractConfig) -> str:
    """A digest of the videos folder and the settings that shape its features."""
    settings = {k: getattr(cfg, k) for k in _FEATURE_KEYS}
    canonical = json.dumps({"videos": videos_uri, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class CheckpointAnswerer:
    """Answers with a loaded checkpoint, from features extracted the way it was trained.

    Args:
        model: The loaded :class:`~videollm.model.video_llm.VideoLLM`.
        features_root: Folder or ``s3://`` prefix for the features, one ``<key>`` per
            videos folder and extraction settings.
        batch_size: Questions per ``generate`` call.
        generation: Decoding settings.
    """

    def __init__(
        self, model: Any, features_root: str, batch_size: int, generation: GenerationArgs
    ) -> None:
        self.model = model
        self.features_root = features_root
        self.batch_size = batch_size
        self.generation = generation
        self.extract_cfg = from_dict(ExtractConfig, dict(model.checkpoint_config.extract))
        self.extract_cfg.device = str(next(model.projector.parameters()).device)

    def answer(
        self,
        asks: Sequence[dict[str, Any]],
        videos_uri: str,
        videos_dir: Path,
        videos: dict[str, Path],
    ) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """Answer ``asks`` whose videos (``videos``, under ``videos_dir``) are there.

        Returns:
            Answers by ask id, and the videos that could not be decoded (``failures.jsonl``
            rows); their questions are left unanswered.
        """
        target = join(self.features_root, features_key(videos_uri, self.extract_cfg))
        with stage_out(target) as local:
            result = extract(videos_dir, local, self.extract_cfg, only=set(videos))
        if result.failures:
            logger.warning("%d benchmark video(s) failed to decode", len(result.failures))
        failed = {f.get("video_id") for f in result.failures}
        todo = [a for a in asks if a["video"] not in failed]
        preds: dict[str, str] = {}
        bar = tqdm(total=len(todo), desc="answer", unit="question")
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            feats = [load_features(feature_path(local, a["video"]))[0] for a in batch]
            answers = generate_answers(
                self.model, [a["prompt"] for a in batch], feats, self.generation
            )
            preds.update(zip([a["id"] for a in batch], answers, strict=True))
            bar.update(len(batch))
        bar.close()
        return preds, result.failures


class EndpointAnswerer:
    """Answers with a served model: each question is sent with its video file.

    Args:
        endpoint: The OpenAI-compatible endpoint.
        generation: ``max_new_tokens`` and ``temperature`` for the requests.
    """

    def __init__(self, endpoint: EndpointConfig, generation: GenerationArgs) -> None:
        self.endpoint = endpoint
        self.generation = generation

    def answer(
        self,
        asks: Sequence[dict[str, Any]],
        videos_uri: str,
        videos_dir: Path,
        videos: dict[str, Path],
    ) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """Answer ``asks`` whose videos are in ``videos`` (no failures: a refused video
        fails the run, as in ``videollm evaluate --endpoint``)."""
        del videos_uri, videos_dir  # the server decodes; nothing is kept here
        answers = answer_with_endpoint(list(asks), videos, self.endpoint, self.generation)
        return dict(zip([a["id"] for a in asks], answers.preds, strict=True)), []
