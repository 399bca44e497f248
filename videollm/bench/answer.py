"""Put a benchmark's questions to the model scored: a checkpoint, or a served model.

A checkpoint answers from features, made once per videos folder and extraction settings
(:mod:`videollm.bench.features`). A served model is sent the video files
(:mod:`videollm.eval.endpoint`). Both get the same prompts: the question, or for multiple
choice the question with lettered options (:func:`videollm.bench.choice.choice_prompt`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from videollm.bench.choice import choice_prompt
from videollm.bench.features import (
    clips_of,
    extract_features,
    feature_id,
    item_span,
    locate_videos,
    read_features,
)
from videollm.data.tokenize import VIDEO_PLACEHOLDER
from videollm.eval.endpoint import EndpointConfig, answer_with_endpoint
from videollm.eval.generate import GenerationArgs, generate_answers
from videollm.features.store import feature_path, load_features

logger = logging.getLogger(__name__)

#: Suffix of the id of a consistency item's second question.
SECOND = "#2"


def asks_of(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One question to put to the model per item, two for a consistency pair.

    Returns:
        ``{"id", "video", "features", "prompt"}`` dicts (with ``start``/``end`` for a question
        about part of the video), ``prompt`` a one-turn conversation with the video
        placeholder, as :func:`videollm.eval.evaluate.questions_of` makes them.
    """
    asks = []
    for item in items:
        text = item["question"]
        if "options" in item:
            text = choice_prompt(text, item["options"])
        asks.append(_ask(item["id"], item, text))
        if "question2" in item:
            asks.append(_ask(item["id"] + SECOND, item, item["question2"]))
    return asks


def _ask(ask_id: str, item: dict[str, Any], text: str) -> dict[str, Any]:
    prompt = [{"from": "human", "value": f"{VIDEO_PLACEHOLDER}\n{text}"}]
    ask = {"id": ask_id, "video": item["video"], "features": feature_id(item), "prompt": prompt}
    span = item_span(item)
    return ask if span is None else ask | {"start": span[0], "end": span[1]}


def rows_of(items: Sequence[dict[str, Any]], preds: dict[str, str]) -> list[dict[str, Any]]:
    """Prediction rows (the items with ``pred``, and ``pred2`` for a consistency pair)."""
    rows = []
    for item in items:
        row = dict(item) | {"pred": preds[item["id"]]}
        if "question2" in item:
            row["pred2"] = preds[item["id"] + SECOND]
        rows.append(row)
    return rows


class CheckpointAnswerer:
    """Answers with a loaded checkpoint, from features extracted the way it was trained.

    Args:
        model: The loaded :class:`~videollm.model.video_llm.VideoLLM`.
        features_root: Folder or ``s3://`` prefix for the features, one ``<key>`` per
            videos folder and extraction settings.
        batch_size: Questions per ``generate`` call.
        generation: Decoding settings.
        extract: Extract missing features (else read what an extract task made; questions
            whose video has none are skipped).
    """

    def __init__(
        self,
        model: Any,
        features_root: str,
        batch_size: int,
        generation: GenerationArgs,
        extract: bool = True,
    ) -> None:
        self.model = model
        self.features_root = features_root
        self.batch_size = batch_size
        self.generation = generation
        self.extract = extract
        self.extract_cfg = model.checkpoint_config.extract_config()
        self.extract_cfg.device = str(next(model.projector.parameters()).device)

    def answer(
        self, asks: Sequence[dict[str, Any]], videos_uri: str
    ) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """Answer ``asks`` about the videos in ``videos_uri``.

        Returns:
            Answers by ask id, and the videos that could not be decoded (``failures.jsonl``
            rows). Questions about those, or about videos not there, are left unanswered.
        """
        needed = {a["features"] for a in asks}
        if self.extract:
            clips = clips_of(asks)
            feats = extract_features(videos_uri, needed, self.extract_cfg, self.features_root,
                                     clips)  # fmt: skip
        else:
            feats = read_features(videos_uri, needed, self.extract_cfg, self.features_root)
        todo = [a for a in asks if feats.has(a["features"])]
        preds: dict[str, str] = {}
        bar = tqdm(total=len(todo), desc="answer", unit="question")
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            tensors = [load_features(feature_path(feats.folder, a["features"]))[0] for a in batch]
            answers = generate_answers(
                self.model, [a["prompt"] for a in batch], tensors, self.generation
            )
            preds.update(zip([a["id"] for a in batch], answers, strict=True))
            bar.update(len(batch))
        bar.close()
        return preds, feats.failures


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
        self, asks: Sequence[dict[str, Any]], videos_uri: str
    ) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """Answer ``asks`` whose videos are in ``videos_uri`` (no failures: a refused video
        fails the run, as in ``videollm evaluate --endpoint``).

        The OpenAI API has no way to say "from second 3 to 9": a question about part of a
        video is sent with the whole video, and a warning says how many were.
        """
        parts = sum(1 for a in asks if "start" in a)
        if parts:
            logger.warning("%d question(s) are about part of a video (start/end); the endpoint "
                           "is sent the whole video", parts)  # fmt: skip
        _, videos = locate_videos(videos_uri, {a["video"] for a in asks})
        todo = [a for a in asks if a["video"] in videos]
        answers = answer_with_endpoint(todo, videos, self.endpoint, self.generation)
        return dict(zip([a["id"] for a in todo], answers.preds, strict=True)), []
