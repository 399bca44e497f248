"""Templates and tokenization: loss only on assistant tokens, one video sentinel."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from videollm.data.templates import conversation_pieces
from videollm.data.tokenize import tokenize_pieces
from videollm.errors import ConfigError
from videollm.model.video_llm import IGNORE_INDEX, VIDEO_TOKEN_INDEX

CONV = [
    {"from": "human", "value": "<video>\nWhat colour is the video?"},
    {"from": "gpt", "value": "red"},
    {"from": "human", "value": "Which way does the square move?"},
    {"from": "gpt", "value": "left"},
]


@pytest.fixture(scope="module")
def tok(tiny_llm_dir):
    return AutoTokenizer.from_pretrained(tiny_llm_dir)


@pytest.mark.parametrize("template", ["vicuna_v1", "chat_template"])
def test_labels_cover_exactly_the_answers(tok, template):
    ids, labels = tokenize_pieces(conversation_pieces(CONV, template, tok), tok)
    assert ids.count(VIDEO_TOKEN_INDEX) == 1
    assert ids[0] == tok.bos_token_id
    target = [t for t in labels if t != IGNORE_INDEX]
    text = tok.decode(target)
    assert "red" in text and "left" in text
    assert "colour" not in text and "USER" not in text and "user" not in text
    # Each answer ends with EOS so generation learns to stop.
    assert target.count(tok.eos_token_id) == 2


def test_vicuna_prompt_matches_video_chatgpt_layout(tok):
    pieces = conversation_pieces(CONV[:1], "vicuna_v1", tok, add_generation_prompt=True)
    text = "".join(p for p, _ in pieces)
    assert text.startswith("You are Video-ChatGPT")
    assert text.endswith("USER: <video>\nWhat colour is the video? ASSISTANT:")
    assert not any(target for _, target in pieces)


def test_generation_prompt_is_prefix_of_training_text(tok):
    for template in ("vicuna_v1", "chat_template"):
        train_ids, _ = tokenize_pieces(conversation_pieces(CONV[:2], template, tok), tok)
        gen_ids, _ = tokenize_pieces(
            conversation_pieces(CONV[:1], template, tok, add_generation_prompt=True), tok
        )
        assert train_ids[: len(gen_ids)] == gen_ids, template


def test_chat_template_missing_is_a_clear_error(tok):
    tok2 = AutoTokenizer.from_pretrained(tok.name_or_path)
    tok2.chat_template = None
    with pytest.raises(ConfigError, match="chat_template"):
        conversation_pieces(CONV, "chat_template", tok2)
