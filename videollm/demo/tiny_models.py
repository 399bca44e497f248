"""Tiny random CLIP and LLM (Llama, Qwen2, Mistral) models, written with ``save_pretrained``.

There is no model hub here, so the demo and the tests build their own models. They have the
same classes and files as the real ones (``openai/clip-vit-large-patch14``, a Llama LLM), so the
loading code that handles a hub id or a local path is the code that runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

# Same mean/std as OpenAI CLIP; the tiny encoder sees 32×32 crops.
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# A minimal Jinja chat template, so the ``chat_template`` conversation mode can be exercised.
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}<|system|>{{ m['content'] }}\n"
    "{% elif m['role'] == 'user' %}<|user|>{{ m['content'] }}\n"
    "{% else %}<|assistant|>{{ m['content'] }}{{ eos_token }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

_CORPUS = [
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    "USER: ASSISTANT: What colour is the video? Which way does the square move?",
    "red green blue yellow left right up down SIL pour cereals milk take bowl stir",
    "0-9 10-19 20-29 30-39 40-49 50-59 60-69 70-79 80-89 90-99 0123456789",
    "The video shows a person making breakfast. Describe the video in detail.",
    "Which breakfast activity is shown? In which order do the actions happen? When does",
    "<|system|> <|user|> <|assistant|>",
]


def build_tiny_clip(out_dir: str | Path, image_size: int = 32, hidden_size: int = 32) -> Path:
    """Write a random CLIP vision tower and its preprocessor config to ``out_dir``."""
    out = Path(out_dir)
    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=3,
        num_attention_heads=4,
        image_size=image_size,
        patch_size=8,
        projection_dim=hidden_size,
    )
    CLIPVisionModel(config).save_pretrained(out)
    processor = {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": image_size},
        "do_center_crop": True,
        "crop_size": {"height": image_size, "width": image_size},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": CLIP_MEAN,
        "image_std": CLIP_STD,
        "resample": 3,
    }
    (out / "preprocessor_config.json").write_text(json.dumps(processor, indent=2))
    return out


def build_tiny_tokenizer(out_dir: str | Path, vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on a small corpus and save it to ``out_dir``."""
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    fast.chat_template = TINY_CHAT_TEMPLATE
    fast.save_pretrained(out_dir)
    return fast


#: LLM families a tiny model can be built of: (config class, causal-LM class).
LLM_FAMILIES: dict[str, tuple[type[PretrainedConfig], type[PreTrainedModel]]] = {
    "llama": (LlamaConfig, LlamaForCausalLM),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM),
    "mistral": (MistralConfig, MistralForCausalLM),
}


def build_tiny_llm(
    out_dir: str | Path,
    hidden_size: int = 64,
    num_layers: int = 2,
    family: str = "llama",
    **config: Any,
) -> Path:
    """Write a random causal LM of ``family`` (a key of :data:`LLM_FAMILIES`) with its
    tokenizer to ``out_dir``; ``config`` overrides settings of its config (``initializer_range``).

    Raises:
        ValueError: Unknown ``family``.
    """
    if family not in LLM_FAMILIES:
        raise ValueError(f"unknown LLM family {family!r}; choose from {', '.join(LLM_FAMILIES)}")
    config_cls, model_cls = LLM_FAMILIES[family]
    out = Path(out_dir)
    tokenizer = build_tiny_tokenizer(out)
    torch.manual_seed(0)
    settings = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model_cls(config_cls(**{**settings, **config})).save_pretrained(out)
    return out
