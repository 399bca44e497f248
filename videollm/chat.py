"""``videollm chat``: ask a trained model a question about a raw video file."""

from __future__ import annotations

from pathlib import Path

from videollm.errors import ConfigError
from videollm.eval.generate import GenerationArgs, generate_answers
from videollm.features.extract import features_for_video
from videollm.model.video_llm import VideoLLM


def chat(
    checkpoint: str | Path,
    video: str | Path,
    question: str,
    history: list[dict[str, str]] | None = None,
    generation: GenerationArgs | None = None,
    device: str = "auto",
    model: VideoLLM | None = None,
) -> str:
    """Extract the video's features the way the checkpoint's features were made, then answer.

    Args:
        checkpoint: Checkpoint folder from ``videollm train``.
        video: A video file.
        question: The question; the video is placed before it.
        history: Earlier ``{"from", "value"}`` turns, the first of which holds ``<video>``.
        generation: Decoding settings.
        device: ``auto``, ``cpu`` or ``cuda``.
        model: An already loaded model (skips loading ``checkpoint``).

    Returns:
        The model's answer.

    Raises:
        ConfigError: The question is empty.
        VideoDecodeError: The video cannot be decoded.
    """
    if not question or not question.strip():
        raise ConfigError("question: required and must not be empty")
    model = model or VideoLLM.from_checkpoint(checkpoint, device=device)
    extract_cfg = model.checkpoint_config.extract_config()
    extract_cfg.device = str(next(model.projector.parameters()).device)
    features, _ = features_for_video(Path(video), extract_cfg)
    turns = list(history or [])
    text = question if turns else f"<video>\n{question}"
    turns.append({"from": "human", "value": text})
    return generate_answers(model, [turns], [features], generation or GenerationArgs())[0]
