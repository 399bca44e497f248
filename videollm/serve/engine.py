"""The inference engine: one loaded model, request limits, timings. No HTTP in here.

The BentoML service is a thin shell around it, so every rule (what is a bad request, how long
each stage took) is plain Python that tests can call directly.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from videollm.data.records import ROLES, VIDEO_TOKEN
from videollm.errors import ConfigError, FeatureFormatError, VideoDecodeError, VideoLLMError
from videollm.eval.generate import GenerationArgs, prompt_ids
from videollm.features.encoder import VideoEncoder
from videollm.features.pooling import pool
from videollm.model.video_llm import VideoLLM
from videollm.serve.batcher import Batcher
from videollm.serve.generation import Generation
from videollm.serve.launch import ModelSource, bento_model, locate_model
from videollm.serve.scheduler import GenerationRequest, Observer, Scheduler
from videollm.serve.serve_config import ServeConfig
from videollm.video.decode import SampledVideo, auto_decoders, read_frames, read_video

logger = logging.getLogger(__name__)

# What a request that leaves ``max_new_tokens`` out gets, lowered to the server's cap.
DEFAULT_MAX_NEW_TOKENS = 128


class BadRequest(VideoLLMError, ValueError):
    """The request is invalid; the message says which field and why (HTTP 400/413)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _no_placeholder(text: str, field: str) -> None:
    # The server puts the one video placeholder the model takes; a second one is an error
    # deep in the model, so say so here.
    if VIDEO_TOKEN in text:
        raise BadRequest(
            f"{field}: must not contain {VIDEO_TOKEN!r}; the server places the video itself"
        )


def _without_path(message: str, upload: Path) -> str:
    """``message`` with the upload's server-side path (a temp dir) replaced by "the upload".

    Clients learn nothing from where the server spooled their file, and must not.
    """
    for where in (f"feature file {upload}", str(upload)):
        message = message.replace(where, "the upload")
    return message


@dataclass
class Started:
    """A generation under way, with the time its video took to decode and encode (ms)."""

    generation: Generation
    decode_ms: float
    encode_ms: float

    @property
    def answer(self) -> str:
        """The answer so far (all of it once the generation is done)."""
        return self.generation.answer

    def wait(self) -> Started:
        """Block until the answer is complete."""
        self.generation.wait()
        return self

    def timings(self) -> dict[str, float]:
        """``decode_ms``, ``encode_ms`` and ``generate_ms`` (so far), rounded."""
        return {
            "decode_ms": round(self.decode_ms, 2),
            "encode_ms": round(self.encode_ms, 2),
            "generate_ms": round(self.generation.generate_ms, 2),
        }


def locate(cfg: ServeConfig) -> ModelSource:
    """The model ``cfg`` asks for: a checkpoint, a registry URI, or the packaged Bento model."""
    if cfg.checkpoint and cfg.model_uri:
        raise VideoLLMError("set only one of VIDEOLLM_CHECKPOINT and VIDEOLLM_MODEL_URI")
    if cfg.checkpoint or cfg.model_uri:
        return locate_model(cfg.checkpoint or None, cfg.model_uri or None)
    return bento_model()


class Engine:
    """Loads the model and encoder once; answers questions about videos or features."""

    def __init__(
        self, cfg: ServeConfig, source: ModelSource | None = None, observer: Observer | None = None
    ) -> None:
        self.cfg = cfg
        source = source or locate(cfg)
        self.model = VideoLLM.from_checkpoint(source.path, device=cfg.device)
        ckpt = self.model.checkpoint_config
        self.extract_cfg = ckpt.extract_config()
        device = str(next(self.model.projector.parameters()).device)
        self.encoder = VideoEncoder(self.extract_cfg.encoder, self.extract_cfg.layer, device)
        self.version = source.version
        self.labels = source.labels
        self.loaded_at = int(time.time())
        # One thread generates for every request at once; the batch bounds KV-cache memory.
        self.scheduler = Scheduler(
            self.model.llm,
            self.model.tokenizer.eos_token_id,
            cfg.max_batch_size,
            cfg.max_batch_tokens,
            observer,
        )
        # Requests run on many threads (so a bad one never queues); decoded frames are big.
        self._decode_slots = threading.BoundedSemaphore(cfg.max_concurrent_decodes)
        # One thread runs the encoder, on the frames of all requests waiting at that moment.
        self.batcher = Batcher(
            self.encoder.encode_pixels, cfg.batch_max_frames, cfg.batch_latency_ms
        )
        logger.info(
            "serving %s (%d feature tokens, %d video positions); decoding with %s",
            source.version,
            ckpt.num_video_tokens,
            self.model.num_video_positions(),
            # Loads the decoders now, before readiness, not in the first request (torchcodec
            # takes ~1.3 s to load its FFmpeg).
            " → ".join(auto_decoders()),
        )

    # ---- validation -------------------------------------------------------------------
    def generation_args(self, max_new_tokens: int | None, temperature: float) -> GenerationArgs:
        """Decoding settings of a request; an omitted ``max_new_tokens`` respects the cap.

        Raises:
            BadRequest: ``temperature`` is not finite or out of range, or ``max_new_tokens`` is
                below 1 (the message names the field).
        """
        if max_new_tokens is None:
            max_new_tokens = min(DEFAULT_MAX_NEW_TOKENS, self.cfg.max_new_tokens)
        try:
            return GenerationArgs(max_new_tokens, temperature)
        except ConfigError as err:  # GenerationArgs names the field: "temperature: must be ..."
            raise BadRequest(str(err)) from err

    def check_question(self, question: str | None, max_new_tokens: int) -> None:
        """Reject a bad question and an over-large ``max_new_tokens``.

        A question is bad when it is missing, over ``max_question_chars`` or holds the
        ``<video>`` placeholder.
        """
        if not question or not question.strip():
            raise BadRequest("question: required and must not be empty")
        if len(question) > self.cfg.max_question_chars:
            raise BadRequest(
                f"question: {len(question)} characters, the limit is {self.cfg.max_question_chars}"
            )
        _no_placeholder(question, "question")
        if not 1 <= max_new_tokens <= self.cfg.max_new_tokens:
            raise BadRequest(f"max_new_tokens: must be between 1 and {self.cfg.max_new_tokens}")

    def check_history(self, history: Any) -> list[dict[str, str]]:
        """Check the earlier turns and return them as plain ``{"from", "value"}`` dicts.

        Valid history is what the chat templates consume: ``{"from": "human"|"gpt",
        "value": str}`` turns alternating human, gpt and ending with an answer (the new
        question follows it), within ``max_history_turns`` and ``max_history_chars``, and
        without the ``<video>`` placeholder.
        """
        if history is None:
            return []
        if not isinstance(history, list):
            raise BadRequest('history: must be a list of {"from", "value"} turns')
        if len(history) > self.cfg.max_history_turns:
            raise BadRequest(
                f"history: {len(history)} turns, the limit is {self.cfg.max_history_turns}"
            )
        if len(history) % 2:
            raise BadRequest(
                "history: must be human, gpt pairs ending with a gpt answer; got an odd number "
                f"of turns ({len(history)})"
            )
        turns: list[dict[str, str]] = []
        for i, turn in enumerate(history):
            where = f"history[{i}]"
            if not isinstance(turn, dict):
                raise BadRequest(f'{where}: must be an object with "from" and "value"')
            role, value = turn.get("from"), turn.get("value")
            if role not in ROLES:
                raise BadRequest(f"{where}.from: must be one of {list(ROLES)}, got {role!r}")
            if role != ROLES[i % 2]:
                raise BadRequest(
                    f"{where}.from: expected {ROLES[i % 2]!r}; turns alternate human, gpt"
                )
            if not isinstance(value, str) or not value.strip():
                raise BadRequest(f"{where}.value: must be a non-empty string")
            _no_placeholder(value, f"{where}.value")
            turns.append({"from": role, "value": value})
        chars = sum(len(t["value"]) for t in turns)
        if chars > self.cfg.max_history_chars:
            raise BadRequest(
                f"history: {chars} characters in all, the limit is {self.cfg.max_history_chars}"
            )
        return turns

    def check_upload(self, path: Path, what: str = "video") -> None:
        """Reject an empty or over-sized upload."""
        size = path.stat().st_size
        if size == 0:
            raise BadRequest(f"{what}: the uploaded file is empty")
        if size > self.cfg.max_upload_mb * 2**20:
            raise BadRequest(
                f"{what}: {size} bytes exceeds {self.cfg.max_upload_mb} MB", status=413
            )

    # ---- stages -----------------------------------------------------------------------
    def features_of(self, video: Path | list[Path]) -> tuple[torch.Tensor, float, float]:
        """Decode and encode an uploaded video, or a video sent as its frames (image files, in
        order); returns features, decode ms, encode ms."""
        if isinstance(video, list):
            for i, image in enumerate(video):
                self.check_upload(image, f"frame {i}")
        else:
            self.check_upload(video)
        # The encoder batch waits for this request while it decodes.
        with self._decode_slots, self.batcher.coming():
            start = time.perf_counter()
            sampled = self._decode_frames(video) if isinstance(video, list) else self._decode(video)
            decoded = time.perf_counter()
            tokens = self.batcher.submit(self.encoder.preprocess(sampled.frames))
        feats = pool(tokens, self.extract_cfg)
        return feats, (decoded - start) * 1e3, (time.perf_counter() - decoded) * 1e3

    def _decode_frames(self, images: list[Path]) -> SampledVideo:
        try:
            return read_frames(
                images, self.extract_cfg.num_frames, self.extract_cfg.resize_shortest
            )
        except VideoDecodeError as err:
            raise BadRequest(f"video frames: {err.reason}") from err

    def _decode(self, video: Path) -> SampledVideo:
        try:
            sampled = read_video(
                video, self.extract_cfg.num_frames, self.extract_cfg.resize_shortest
            )
        except VideoDecodeError as err:
            # The reason quotes the server's temp path; the client only needs what went wrong.
            raise BadRequest(f"video: {_without_path(err.reason, video)}") from err
        if sampled.duration_s > self.cfg.max_duration_s:
            raise BadRequest(
                f"video: {sampled.duration_s:.0f} s long, the limit is {self.cfg.max_duration_s} s"
            )
        return sampled

    def check_features(self, features: torch.Tensor) -> None:
        """Reject features whose shape does not match the model."""
        ckpt = self.model.checkpoint_config
        expected = (ckpt.num_video_tokens, ckpt.feature_dim)
        if tuple(features.shape) != expected:
            raise BadRequest(f"features: shape {tuple(features.shape)}, the model needs {expected}")

    def start(
        self,
        features: torch.Tensor,
        question: str,
        history: list[dict[str, str]],
        args: GenerationArgs,
    ) -> Generation:
        """Queue the answer to ``question`` about ``features``; read it from the result.

        ``question`` and ``history`` must have passed :meth:`check_question` and
        :meth:`check_history`.

        Raises:
            BadRequest: The prompt plus ``max_new_tokens`` exceeds ``max_batch_tokens``.
        """
        turns = [*history, {"from": "human", "value": question}]
        # As in the training records: the video once, before the first human turn.
        turns[0] = {**turns[0], "value": f"{VIDEO_TOKEN}\n{turns[0]['value']}"}
        ids = torch.tensor([prompt_ids(self.model, turns)])
        device = next(self.model.projector.parameters()).device
        with torch.inference_mode():
            embeds, _, _ = self.model.prepare_inputs(
                ids.to(device), torch.ones_like(ids).to(device), features[None].float()
            )
        request = GenerationRequest(embeds[0], args.max_new_tokens, args.temperature)
        if request.cost > self.cfg.max_batch_tokens:
            raise BadRequest(
                f"max_new_tokens: the prompt ({request.prompt_tokens} tokens with the video) "
                f"plus max_new_tokens ({args.max_new_tokens}) exceeds the server's "
                f"VIDEOLLM_MAX_BATCH_TOKENS ({self.cfg.max_batch_tokens})"
            )
        return Generation(self.scheduler.submit(request), self.model.tokenizer)

    def generate(
        self,
        features: torch.Tensor,
        question: str,
        history: list[dict[str, str]],
        args: GenerationArgs,
    ) -> tuple[str, float]:
        """Answer ``question`` about ``features``; returns the answer and generate ms."""
        generation = self.start(features, question, history, args)
        return generation.wait(), generation.generate_ms

    def start_video(
        self,
        video: Path | list[Path],
        question: str,
        history: list[dict[str, str]] | None,
        args: GenerationArgs,
    ) -> Started:
        """Validate, decode and encode an uploaded video (or its frames, in order), and queue
        the answer's generation."""
        self.check_question(question, args.max_new_tokens)
        turns = self.check_history(history)  # before the decode: bad text is cheap to refuse
        feats, decode_ms, encode_ms = self.features_of(video)
        return Started(self.start(feats, question, turns, args), decode_ms, encode_ms)

    def start_features(
        self,
        features_file: Path,
        question: str,
        history: list[dict[str, str]] | None,
        args: GenerationArgs,
    ) -> Started:
        """As :meth:`start_video`, for a safetensors upload of features instead of a video."""
        from videollm.features.store import load_features

        self.check_question(question, args.max_new_tokens)
        turns = self.check_history(history)
        self.check_upload(features_file, "features")
        try:
            feats, _ = load_features(features_file)
        except FeatureFormatError as err:
            raise BadRequest(f"features: {_without_path(str(err), features_file)}") from err
        self.check_features(feats)
        return Started(self.start(feats, question, turns, args), 0.0, 0.0)

    def answer_video(
        self,
        video: Path,
        question: str,
        history: list[dict[str, str]] | None,
        args: GenerationArgs,
    ) -> Started:
        """The whole non-streaming ``/chat`` path: validate, decode, encode, generate."""
        return self.start_video(video, question, history, args).wait()

    def answer_features(
        self,
        features_file: Path,
        question: str,
        history: list[dict[str, str]] | None,
        args: GenerationArgs,
    ) -> Started:
        """The ``/chat_features`` path: a safetensors upload instead of a video."""
        return self.start_features(features_file, question, history, args).wait()
