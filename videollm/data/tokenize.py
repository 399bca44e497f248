"""Tokenize template pieces into ids and labels, with the video placeholder as one sentinel."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from videollm.data.templates import Piece
from videollm.model.video_llm import IGNORE_INDEX, VIDEO_TOKEN_INDEX

VIDEO_PLACEHOLDER = "<video>"


def tokenize_pieces(
    pieces: list[Piece], tokenizer: PreTrainedTokenizerBase, add_bos: bool = True
) -> tuple[list[int], list[int]]:
    """Tokenize pieces; ``<video>`` becomes ``VIDEO_TOKEN_INDEX``; non-targets get no loss.

    Pieces are tokenized one by one so a target's tokens are exactly its own; the same split is
    used at inference, so prompts are tokenized identically in training and generation.
    """
    ids: list[int] = []
    labels: list[int] = []
    bos = tokenizer.bos_token_id
    if add_bos and bos is not None and not pieces[0][0].startswith(tokenizer.bos_token or "\0"):
        ids.append(bos)
        labels.append(IGNORE_INDEX)
    for text, is_target in pieces:
        parts = text.split(VIDEO_PLACEHOLDER)
        for j, part in enumerate(parts):
            if j > 0:
                ids.append(VIDEO_TOKEN_INDEX)
                labels.append(IGNORE_INDEX)
            if part:
                tok = tokenizer(part, add_special_tokens=False)["input_ids"]
                ids.extend(tok)
                labels.extend(tok if is_target else [IGNORE_INDEX] * len(tok))
    return ids, labels
