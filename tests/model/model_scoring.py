"""Likelihood-based answer accuracy: does the model find the true colour the most likely?"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch.nn.functional import cross_entropy

from videollm.data.dataset import ChatDataset, VideoChatCollator
from videollm.model.video_llm import IGNORE_INDEX, VideoLLM

COLOURS = ("red", "green", "blue")


@torch.no_grad()
def colour_accuracy(model: VideoLLM, records: list[dict], features_dir: Path) -> float:
    """Share of records whose true colour has the lowest answer NLL of the three colours."""
    cfg = model.checkpoint_config
    model.eval()
    variants = []
    for rec in records:
        for colour in COLOURS:
            variant = copy.deepcopy(rec)
            variant["conversations"][1]["value"] = colour
            variants.append(variant)
    data = ChatDataset(
        variants, features_dir, model.tokenizer, cfg.model.template, cfg.model.max_length,
        cfg.num_video_tokens, cfg.feature_dim,
    )  # fmt: skip
    batch = VideoChatCollator(model.tokenizer.pad_token_id)([data[i] for i in range(len(data))])
    embeds, mask, labels = model.prepare_inputs(
        batch["input_ids"], batch["attention_mask"], batch["features"], batch["labels"]
    )
    logits = model.llm(inputs_embeds=embeds, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    nll = cross_entropy(logits.transpose(1, 2), target.clamp(min=0), reduction="none")
    nll = (nll * (target != IGNORE_INDEX)).sum(1).view(len(records), len(COLOURS))
    truth = torch.tensor([COLOURS.index(r["conversations"][1]["value"]) for r in records])
    return (nll.argmin(1) == truth).float().mean().item()
