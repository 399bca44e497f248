"""VideoLLM: a Hugging Face causal LM plus a projector, with video features spliced into
``inputs_embeds`` at the ``<video>`` placeholder.

No modeling file is copied: the LLM is whatever ``AutoModelForCausalLM`` loads, and the video
enters through its public ``inputs_embeds`` argument, the way LLaVA-style models do it.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from videollm.atomic import atomic_write_bytes
from videollm.errors import CheckpointError, FeatureFormatError
from videollm.hub import load_pretrained, model_source
from videollm.model.model_config import WEIGHTS_FILE, CheckpointConfig
from videollm.model.projector import VideoBoundary, build_projector

logger = logging.getLogger(__name__)

# Stands in for the video in token-id sequences until the features are spliced in.
VIDEO_TOKEN_INDEX = -200
IGNORE_INDEX = -100


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA cards that support it, fp32 elsewhere."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def pick_attn_implementation(requested: str, device: torch.device) -> str:
    """``flash_attention_2`` when flash-attn is installed and on CUDA, else ``sdpa``."""
    if requested != "auto":
        return requested
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


class VideoLLM(nn.Module):
    """A causal LM that reads video features.

    Build a fresh one for training with :meth:`build`, or a trained one with
    :meth:`from_checkpoint`.
    """

    main_input_name = "input_ids"

    def __init__(
        self, llm: nn.Module, tokenizer: PreTrainedTokenizerBase, config: CheckpointConfig
    ) -> None:
        super().__init__()
        self.llm = llm
        self.tokenizer = tokenizer
        self.checkpoint_config = config
        hidden = llm.get_input_embeddings().embedding_dim
        mcfg = config.model
        self.projector = build_projector(
            mcfg.projector, config.feature_dim, hidden, mcfg.projector_options
        )
        self.boundary = VideoBoundary(hidden) if config.model.use_vid_start_end else None

    @property
    def config(self) -> Any:
        """The base LLM's ``PretrainedConfig`` (Trainer and DeepSpeed read sizes from it)."""
        return self.llm.config

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def build(
        cls, config: CheckpointConfig, device: str = "auto", dtype: torch.dtype | None = None
    ) -> VideoLLM:
        """Load the base LLM and tokenizer named in ``config`` and attach a new projector.

        Parameters are frozen according to ``config.model.train_mode``; LoRA adapters are added
        with peft when it is ``lora``.
        """
        mcfg = config.model
        dev = resolve_device(device)
        llm_dtype = dtype or default_dtype(dev)
        attn = pick_attn_implementation(mcfg.attn_implementation, dev)
        logger.info("loading LLM %s (%s, attn=%s)", mcfg.llm, llm_dtype, attn)
        source = model_source(mcfg.llm, "model.llm")  # an s3:// mirror: its local copy
        llm = load_pretrained(
            lambda: AutoModelForCausalLM.from_pretrained(
                source, dtype=llm_dtype, attn_implementation=attn
            ),
            mcfg.llm,
            "model.llm",
        )
        tokenizer = load_pretrained(
            lambda: AutoTokenizer.from_pretrained(source), mcfg.llm, "model.llm"
        )
        if tokenizer.pad_token_id is None:
            # Llama/Vicuna tokenizers ship without a pad token; padding is masked out anyway.
            tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
        if mcfg.train_mode == "lora":
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(
                r=mcfg.lora.r,
                lora_alpha=mcfg.lora.alpha,
                lora_dropout=mcfg.lora.dropout,
                target_modules=list(mcfg.lora.target_modules),
                task_type="CAUSAL_LM",
            )
            llm = get_peft_model(llm, lora)
        model = cls(llm, tokenizer, config)
        model.projector.to(dev)
        if model.boundary is not None:
            model.boundary.to(dev)
        model.llm.to(dev)
        model._set_trainable()
        return model

    @classmethod
    def from_checkpoint(
        cls, directory: str | Path, device: str = "auto", dtype: torch.dtype | None = None
    ) -> VideoLLM:
        """Rebuild a trained model from a checkpoint directory (config + trained weights)."""
        config = CheckpointConfig.load(directory)
        model = cls.build(config, device=device, dtype=dtype)
        model.load_trained_weights(directory)
        model.eval()
        return model

    def _set_trainable(self) -> None:
        mode = self.checkpoint_config.model.train_mode
        for name, param in self.named_parameters():
            param.requires_grad_(self._is_trained(name, mode))

    @staticmethod
    def _is_trained(name: str, mode: str) -> bool:
        if name.startswith(("projector.", "boundary.")):
            return True
        if mode == "lora":
            return "lora_" in name
        return mode == "full"

    # ---- weights ------------------------------------------------------------------------
    def trained_state_dict(self, state_dict: dict[str, torch.Tensor] | None = None) -> dict:
        """Only the weights this train mode trains (what a checkpoint stores)."""
        mode = self.checkpoint_config.model.train_mode
        full = state_dict if state_dict is not None else self.state_dict()
        return {
            k: v.detach().cpu().contiguous() for k, v in full.items() if self._is_trained(k, mode)
        }

    def save_checkpoint(
        self, directory: str | Path, state_dict: dict[str, torch.Tensor] | None = None
    ) -> None:
        """Write trained weights (safetensors) and ``videollm_config.json`` to ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        blob = save(self.trained_state_dict(state_dict), metadata={"format": "pt"})
        atomic_write_bytes(out / WEIGHTS_FILE, blob)
        self.checkpoint_config.save(out)

    def load_trained_weights(self, directory: str | Path) -> None:
        """Load a checkpoint's trained weights; every stored tensor must match a parameter."""
        path = Path(directory) / WEIGHTS_FILE
        if not path.is_file():
            raise CheckpointError(f"{directory}: {WEIGHTS_FILE} missing")
        try:
            tensors = load_file(str(path))
        except Exception as err:  # safetensors raises SafetensorError; a 0-byte file, OSError
            raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err
        expected = set(self.trained_state_dict())
        missing, unexpected = expected - set(tensors), set(tensors) - expected
        if missing or unexpected:
            raise CheckpointError(
                f"{path} does not match the model: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(unexpected)[:5]}"
            )
        own = self.state_dict()
        wrong = [k for k in sorted(tensors) if tensors[k].shape != own[k].shape]
        if wrong:
            k = wrong[0]
            raise CheckpointError(
                f"{path}: {k} is {tuple(tensors[k].shape)} there but {tuple(own[k].shape)} in "
                "this model; it was trained on features of another width or for another LLM"
            )
        self.load_state_dict(tensors, strict=False)

    def activation_checkpointing_enable(
        self,
        activation_checkpointing_kwargs: dict | None = None,
        every_n_layers: int = 1,
        offload: bool = False,
    ) -> None:
        """Checkpoint the LLM's activations (Trainer calls this for ``gradient_checkpointing``)."""
        self.llm.activation_checkpointing_enable(
            activation_checkpointing_kwargs=activation_checkpointing_kwargs
            or {"use_reentrant": False},
            every_n_layers=every_n_layers,
            offload=offload,
        )

    # ---- splicing -----------------------------------------------------------------------
    def num_video_positions(self, num_feature_tokens: int | None = None) -> int:
        """Sequence positions one video takes: the projector's output tokens (+2 with
        start/end). ``num_feature_tokens`` defaults to the checkpoint's ``num_video_tokens``.
        """
        n = num_feature_tokens or self.checkpoint_config.num_video_tokens
        return self.projector.num_output_tokens(n) + (2 if self.boundary is not None else 0)

    def embed_video(self, features: torch.Tensor) -> torch.Tensor:
        """Project B×N×D features to B×M×H embeddings, M = :meth:`num_video_positions`."""
        param = next(self.projector.parameters())
        embeds = self.projector(features.to(device=param.device, dtype=param.dtype))
        if self.boundary is not None:
            embeds = torch.stack([self.boundary.wrap(e) for e in embeds])
        return embeds

    def prepare_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        features: torch.Tensor,
        labels: torch.Tensor | None = None,
        padding_side: str = "right",
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Replace each row's ``VIDEO_TOKEN_INDEX`` by that row's projected video tokens.

        Returns ``(inputs_embeds, attention_mask, labels)`` padded on ``padding_side``; the
        video positions get label ``IGNORE_INDEX`` so loss falls only on text targets.
        """
        if features.dim() != 3 or features.shape[0] != input_ids.shape[0]:
            raise FeatureFormatError(
                f"features must be B×N×D with B={input_ids.shape[0]}, got {tuple(features.shape)}"
            )
        if features.shape[2] != self.checkpoint_config.feature_dim:
            raise FeatureFormatError(
                f"features have width {features.shape[2]}, but the projector takes "
                f"{self.checkpoint_config.feature_dim} (features made by another encoder?)"
            )
        embed_tokens = self.llm.get_input_embeddings()
        video = self.embed_video(features)
        rows_e, rows_l = [], []
        for i in range(input_ids.shape[0]):
            keep = attention_mask[i].bool()
            ids = input_ids[i][keep]
            pos = (ids == VIDEO_TOKEN_INDEX).nonzero().flatten()
            if len(pos) != 1:
                raise FeatureFormatError(f"row {i} has {len(pos)} video placeholders, expected 1")
            p = int(pos[0])
            text = embed_tokens(ids.clamp(min=0))
            v = video[i].to(text.dtype)
            rows_e.append(torch.cat([text[:p], v, text[p + 1 :]]))
            if labels is not None:
                lab = labels[i][keep]
                fill = torch.full((v.shape[0],), IGNORE_INDEX, dtype=lab.dtype, device=lab.device)
                rows_l.append(torch.cat([lab[:p], fill, lab[p + 1 :]]))
        return _pad(rows_e, rows_l if labels is not None else None, padding_side)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        features: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> Any:
        """Causal-LM forward; returns the LLM's output (with ``loss`` when labels are given)."""
        embeds, mask, labels = self.prepare_inputs(input_ids, attention_mask, features, labels)
        return self.llm(inputs_embeds=embeds, attention_mask=mask, labels=labels, use_cache=False)

    @torch.inference_mode()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        features: torch.Tensor,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Generate new token ids (prompt excluded); greedy when ``temperature`` is 0.

        Plain greedy decoding or sampling at ``temperature``, whatever the base model's
        ``generation_config`` ships (a repetition penalty, top-p, top-k): the serving scheduler
        decodes the same way, so ``videollm evaluate`` scores what the server answers.
        """
        embeds, mask, _ = self.prepare_inputs(input_ids, attention_mask, features, None, "left")
        sampling = temperature > 0
        gen = self.llm.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=sampling,
            temperature=temperature if sampling else None,
            # Explicit neutral values: None would take the base model's defaults.
            top_p=1.0,
            top_k=0,
            repetition_penalty=1.0,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
            **kwargs,
        )
        return gen


def _pad(
    rows_e: list[torch.Tensor], rows_l: list[torch.Tensor] | None, side: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    longest = max(r.shape[0] for r in rows_e)
    embeds = rows_e[0].new_zeros((len(rows_e), longest, rows_e[0].shape[1]))
    mask = torch.zeros((len(rows_e), longest), dtype=torch.long, device=rows_e[0].device)
    labels = None
    if rows_l is not None:
        labels = torch.full(
            (len(rows_l), longest), IGNORE_INDEX, dtype=rows_l[0].dtype, device=rows_l[0].device
        )
    for i, row in enumerate(rows_e):
        n = row.shape[0]
        sl = slice(longest - n, longest) if side == "left" else slice(0, n)
        embeds[i, sl] = row
        mask[i, sl] = 1
        if labels is not None and rows_l is not None:
            labels[i, sl] = rows_l[i]
    return embeds, mask, labels
