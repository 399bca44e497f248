"""Batched answer generation from a trained :class:`VideoLLM`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from videollm.config_loader import check_int, check_number
from videollm.data.templates import conversation_pieces
from videollm.data.tokenize import tokenize_pieces
from videollm.model.video_llm import VideoLLM

# Above this, softmax(logits / T) is uniform to float precision: almost surely a typo (1e30).
MAX_TEMPERATURE = 100.0


@dataclass
class GenerationArgs:
    """Decoding settings: greedy when ``temperature`` is 0."""

    max_new_tokens: int = 128
    temperature: float = 0.0

    def __post_init__(self) -> None:
        # nan/inf/negative temperatures reach torch's sampler as garbage probabilities; refuse
        # them here so the CLI and the server give the same named error.
        check_number(self.temperature, "temperature", low=0.0, high=MAX_TEMPERATURE)
        check_int(self.max_new_tokens, 1, "max_new_tokens")


def prompt_ids(model: VideoLLM, conversations: list[dict[str, str]]) -> list[int]:
    """Token ids for a conversation ending in an unanswered question (video sentinel included)."""
    template = model.checkpoint_config.model.template
    pieces = conversation_pieces(
        conversations, template, model.tokenizer, add_generation_prompt=True
    )
    ids, _ = tokenize_pieces(pieces, model.tokenizer)
    return ids


def generate_answers(
    model: VideoLLM,
    prompts: list[list[dict[str, str]]],
    features: list[torch.Tensor],
    args: GenerationArgs,
) -> list[str]:
    """Answer a batch of prompts, one feature tensor (N×D) per prompt.

    Args:
        model: The trained model (in eval mode).
        prompts: Conversations, each ending with the human question to answer.
        features: Video features per prompt.
        args: Decoding settings.

    Returns:
        The decoded answers, special tokens and surrounding whitespace stripped.
    """
    rows = [prompt_ids(model, conv) for conv in prompts]
    longest = max(len(r) for r in rows)
    pad = model.tokenizer.pad_token_id
    ids = torch.full((len(rows), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    device = next(model.projector.parameters()).device
    out = model.generate(
        ids.to(device),
        mask.to(device),
        torch.stack([f.float() for f in features]),
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
    )
    return [t.strip() for t in model.tokenizer.batch_decode(out, skip_special_tokens=True)]
