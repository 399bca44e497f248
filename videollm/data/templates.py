"""Conversation templates: turn chat turns into text pieces marked as prompt or target.

Training puts loss only on target pieces (the assistant's answers). Generation uses the same
functions with the last answer left out, so train and inference prompts match exactly.
"""

from __future__ import annotations

from typing import Literal

from transformers import PreTrainedTokenizerBase

from videollm.errors import ConfigError

TemplateName = Literal["vicuna_v1", "chat_template"]
Piece = tuple[str, bool]  # (text, is_target)

# Video-ChatGPT's ``video-chatgpt_v1`` conversation (a Vicuna v1.1 variant).
VICUNA_SYSTEM = (
    "You are Video-ChatGPT, a large vision-language assistant. You are able to understand the "
    "video content that the user provides, and assist the user with a variety of tasks using "
    "natural language.Follow the instructions carefully and explain your answers in detail."
)


def _vicuna(turns: list[tuple[str, str | None]], eos: str) -> list[Piece]:
    pieces: list[Piece] = []
    prompt = VICUNA_SYSTEM + " "
    for question, answer in turns:
        prompt += f"USER: {question} ASSISTANT:"
        if answer is None:
            break
        pieces.append((prompt, False))
        pieces.append((f" {answer}{eos}", True))
        prompt = ""
    if prompt:
        pieces.append((prompt, False))
    return pieces


def _chat_template(
    turns: list[tuple[str, str | None]], tokenizer: PreTrainedTokenizerBase
) -> list[Piece]:
    if not tokenizer.chat_template:
        raise ConfigError(
            f"template 'chat_template' needs a tokenizer with a chat_template; "
            f"{tokenizer.name_or_path} has none (use template=vicuna_v1)"
        )
    messages: list[dict[str, str]] = []
    pieces: list[Piece] = []
    done = ""  # text already emitted as pieces
    for question, answer in turns:
        messages.append({"role": "user", "content": question})
        prefix = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if answer is None:
            pieces.append((prefix[len(done) :], False))
            return pieces
        messages.append({"role": "assistant", "content": answer})
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        if not (prefix.startswith(done) and full.startswith(prefix)):
            # Templates that rewrite earlier turns cannot be masked by prefix differences.
            raise ConfigError(
                f"chat_template of {tokenizer.name_or_path} is not prefix-stable; "
                "use template=vicuna_v1"
            )
        pieces.append((prefix[len(done) :], False))
        pieces.append((full[len(prefix) :], True))
        done = full
    return pieces


def conversation_pieces(
    conversations: list[dict[str, str]],
    template: TemplateName,
    tokenizer: PreTrainedTokenizerBase,
    add_generation_prompt: bool = False,
) -> list[Piece]:
    """Render a chat record's turns.

    Args:
        conversations: Alternating ``{"from": "human"|"gpt", "value"}`` turns.
        template: ``vicuna_v1`` or ``chat_template``.
        tokenizer: The LLM's tokenizer (for its EOS token and chat template).
        add_generation_prompt: End with an open assistant turn; a trailing human turn with
            no answer is treated this way too.

    Returns:
        Text pieces, each marked as target (assistant answer) or not.
    """
    turns: list[tuple[str, str | None]] = []
    for i in range(0, len(conversations), 2):
        question = conversations[i]["value"]
        answer = conversations[i + 1]["value"] if i + 1 < len(conversations) else None
        turns.append((question, answer))
    if add_generation_prompt and turns and turns[-1][1] is not None:
        raise ValueError("add_generation_prompt needs a conversation that ends with a question")
    if template == "vicuna_v1":
        return _vicuna(turns, tokenizer.eos_token or "")
    if template == "chat_template":
        return _chat_template(turns, tokenizer)
    raise ConfigError(f"unknown template {template!r}; choose vicuna_v1 or chat_template")
