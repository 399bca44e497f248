"""The training dataset: chat records + per-video feature files → token ids, labels, features."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from videollm.data.templates import TemplateName, conversation_pieces
from videollm.data.tokenize import tokenize_pieces
from videollm.errors import ConfigError, FeatureFormatError
from videollm.features.store import feature_path, load_features
from videollm.model.video_llm import IGNORE_INDEX

logger = logging.getLogger(__name__)


def check_features_exist(records: list[dict], features_dir: str | Path) -> None:
    """Fail early, naming the videos whose feature files are missing."""
    missing = sorted(
        {r["video"] for r in records if not feature_path(features_dir, r["video"]).is_file()}
    )
    if missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        raise FeatureFormatError(
            f"{len(missing)} video(s) referenced by the records have no features in "
            f"{features_dir}: {shown} (run `videollm extract` first)"
        )


class ChatDataset(Dataset):
    """Tokenizes records lazily and loads each video's features from safetensors."""

    def __init__(
        self,
        records: list[dict],
        features_dir: str | Path,
        tokenizer: PreTrainedTokenizerBase,
        template: TemplateName,
        max_length: int,
        num_video_tokens: int,
        feature_dim: int,
        video_positions: int | None = None,
    ) -> None:
        check_features_exist(records, features_dir)
        self.records = records
        self.features_dir = Path(features_dir)
        self.tokenizer = tokenizer
        self.template = template
        # Text may use what is left after the video's positions (the placeholder itself is one
        # id). A projector may emit fewer tokens than it reads (a Q-Former's queries), and
        # start/end markers add two: ``video_positions`` is what the sequence really holds.
        positions = num_video_tokens if video_positions is None else video_positions
        self.max_text = max_length - positions + 1
        if self.max_text < 8:
            raise ConfigError(
                f"model.max_length={max_length} leaves no room for text beside "
                f"{positions} video positions"
            )
        self.shape = (num_video_tokens, feature_dim)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        pieces = conversation_pieces(rec["conversations"], self.template, self.tokenizer)
        ids, labels = tokenize_pieces(pieces, self.tokenizer)
        if len(ids) > self.max_text:
            logger.debug(
                "truncating record %s from %d to %d tokens", rec["id"], len(ids), self.max_text
            )
            ids, labels = ids[: self.max_text], labels[: self.max_text]
        path = feature_path(self.features_dir, rec["video"])
        features, _ = load_features(path)
        self._check_shape(path, features)
        return {"input_ids": ids, "labels": labels, "features": features}

    def _check_shape(self, path: Path, features: torch.Tensor) -> None:
        """Every video must have the shape the projector was built for."""
        if tuple(features.shape) != self.shape:
            raise FeatureFormatError(
                f"feature file {path} is {tuple(features.shape)}, but the other videos (and "
                f"the projector) are {self.shape}: it was extracted with other settings"
            )


@dataclass
class VideoChatCollator:
    """Pads a batch on the right and stacks features (all videos have the same token count)."""

    pad_token_id: int

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), longest), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), longest), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n] = torch.tensor(b["input_ids"])
            labels[i, :n] = torch.tensor(b["labels"])
            mask[i, :n] = 1
        shapes = {tuple(b["features"].shape) for b in batch}
        if len(shapes) != 1:
            raise FeatureFormatError(
                f"videos in one batch have different feature shapes: {sorted(shapes)}"
            )
        features = torch.stack([b["features"].float() for b in batch])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "features": features}
