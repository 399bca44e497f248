"""A ``transformers.Trainer`` that saves and resumes only what videollm trains.

The stock Trainer would write the whole frozen LLM into every checkpoint (and pickle its
arguments). Ours writes the trained weights as safetensors plus ``videollm_config.json``, and the
training arguments as JSON; optimizer, scheduler and RNG state are still saved by the Trainer,
so ``resume`` continues exactly where it stopped.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import Trainer

from videollm.model.video_llm import VideoLLM


class VideoLLMTrainer(Trainer):
    """Trainer for :class:`VideoLLM` with trained-weights-only checkpoints."""

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if not self.args.should_save:
            return
        out = Path(output_dir or self.args.output_dir)
        model = self.accelerator.unwrap_model(self.model)
        assert isinstance(model, VideoLLM)
        model.save_checkpoint(out, state_dict)
        model.tokenizer.save_pretrained(out)
        (out / "training_args.json").write_text(self.args.to_json_string())

    def _load_from_checkpoint(
        self, resume_from_checkpoint: str, model: torch.nn.Module | None = None
    ) -> None:
        target = model if model is not None else self.model
        assert isinstance(target, VideoLLM)
        target.load_trained_weights(resume_from_checkpoint)
