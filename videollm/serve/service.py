"""The BentoML service: ``bentoml serve videollm.serve.service:VideoLLMService``.

The model loads in a background thread at start-up; ``/readyz`` turns 200 once it has, and
API calls before that get 503. Every rule lives in :class:`~videollm.serve.engine.Engine`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any

import bentoml
from bentoml.exceptions import BentoMLException
from bentoml.validators import ContentType

from videollm.errors import VideoDecodeError
from videollm.serve.engine import BadRequest, Engine, Started
from videollm.serve.middleware import GuardMiddleware
from videollm.serve.openai_api import ModelUnavailable, build_app
from videollm.serve.scheduler import Observer
from videollm.serve.serve_config import ServeConfig
from videollm.serve.sse import GenerationStream, event, relay

logger = logging.getLogger(__name__)
CONFIG = ServeConfig.from_env()

requests_total = bentoml.metrics.Counter(
    name="videollm_requests_total",
    documentation="Requests by API and outcome",
    labelnames=["api", "outcome"],
)
videos_decoded = bentoml.metrics.Counter(
    name="videollm_videos_decoded_total", documentation="Videos decoded"
)
decode_failures = bentoml.metrics.Counter(
    name="videollm_decode_failures_total", documentation="Uploads that were not a readable video"
)
time_to_first_token = bentoml.metrics.Histogram(
    name="videollm_time_to_first_token_seconds",
    documentation="From a request's queueing for generation to its first token",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
inter_token_latency = bentoml.metrics.Histogram(
    name="videollm_inter_token_latency_seconds",
    documentation="Between two tokens of one request",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
batch_size = bentoml.metrics.Histogram(
    name="videollm_batch_size",
    documentation="Sequences in each forward step of the LLM",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)

generations_cancelled = bentoml.metrics.Counter(
    name="videollm_generations_cancelled_total",
    documentation="Generations stopped early because their client went away",
)


class _Metrics(Observer):
    """The scheduler's timings as the Prometheus histograms above."""

    def first_token(self, seconds: float) -> None:
        time_to_first_token.observe(seconds)

    def inter_token(self, seconds: float) -> None:
        inter_token_latency.observe(seconds)

    def batch(self, size: int) -> None:
        batch_size.observe(size)

    def cancelled(self, generated: int) -> None:
        generations_cancelled.inc()


# ``videollm_requests_total`` outcomes of rejected requests, by HTTP status.
OUTCOMES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    503: "unavailable",
}
# Sync APIs run on BentoML's thread pool, one thread unless told otherwise: a cheap 400 would
# wait for every running decode and generation. One thread per admitted request means none
# waits for a thread; the scheduler's batch limits still bound generation memory.
MAX_CONCURRENCY = 128


@contextmanager
def _bad_requests_as_http() -> Iterator[None]:
    """Turn the engine's :class:`BadRequest` into a 4xx JSON error.

    The middleware counts it in ``videollm_requests_total``, with every other rejection.
    """
    try:
        yield
    except BadRequest as err:
        if isinstance(err.__cause__, VideoDecodeError):
            decode_failures.inc()
        raise BentoMLException(str(err), error_code=HTTPStatus(err.status)) from err


def _current_engine() -> Engine:
    service = bentoml.get_current_service()
    if service.engine is None:
        raise ModelUnavailable(service.load_error or "the model is still loading")
    return service.engine


def _count_ok(api: str) -> None:
    requests_total.labels(api=api, outcome="ok").inc()


# The OpenAI-compatible API: its own FastAPI app, so its bodies and errors are OpenAI's.
openai_app = build_app(_current_engine, _count_ok, CONFIG.max_concurrent_decodes)


@bentoml.asgi_app(openai_app, path="/v1")
@bentoml.service(
    resources={"cpu": "2"},
    traffic={"timeout": 300, "max_concurrency": MAX_CONCURRENCY},
    threads=MAX_CONCURRENCY,
)
class VideoLLMService:
    """Answers questions about uploaded videos (or precomputed features)."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.load_error: str | None = None
        threading.Thread(target=self._load, name="videollm-load", daemon=True).start()

    def _load(self) -> None:
        # On a fresh install the champion may not exist yet: keep trying (not ready meanwhile)
        # instead of needing a restart after the first pipeline run.
        while True:
            try:
                self.engine = Engine(CONFIG, observer=_Metrics())
                self.load_error = None
                return
            except Exception as err:  # reported through /readyz and every API call
                logger.exception("model failed to load")
                self.load_error = str(err)
            if CONFIG.load_retry_s <= 0:
                return
            logger.info("retrying in %d s", CONFIG.load_retry_s)
            time.sleep(CONFIG.load_retry_s)

    def __is_ready__(self) -> bool:
        return self.engine is not None

    def _engine(self) -> Engine:
        if self.engine is None:
            reason = self.load_error or "the model is still loading"
            raise BentoMLException(reason, error_code=HTTPStatus.SERVICE_UNAVAILABLE)
        return self.engine

    def _reply(self, api: str, started: Started) -> dict[str, Any]:
        requests_total.labels(api=api, outcome="ok").inc()
        gen = started.generation
        return {
            "answer": started.answer,
            "model_version": self._engine().version,
            "finish_reason": gen.finish_reason,
            "timings": started.timings(),
            "usage": {
                "prompt_tokens": gen.prompt_tokens,
                "completion_tokens": gen.completion_tokens,
            },
        }

    def _respond(self, api: str, started: Started, stream: bool) -> Any:
        """The JSON reply, or with ``stream`` an event stream of ``token`` events and ``done``."""
        if not stream:
            return self._reply(api, started.wait())
        events = relay(
            started.generation,
            lambda text: event({"text": text}, "token"),
            lambda: [event(self._reply(api, started), "done")],
            lambda message: event({"error": message}, "error"),
        )
        return GenerationStream(events, started.generation)

    @bentoml.api
    def chat(
        self,
        video: Annotated[Path, ContentType("video/*")],
        question: str = "",
        history: list[dict[str, str]] | None = None,
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        stream: bool = False,
    ) -> dict[str, Any]:
        """Answer ``question`` about an uploaded video.

        ``max_new_tokens`` defaults to 128, or ``VIDEOLLM_MAX_NEW_TOKENS`` when that is lower.
        With ``stream``, the answer comes as server-sent events: ``token`` (``{"text"}``) per
        piece of text, then ``done`` with the reply the non-streaming call gives.
        """
        engine = self._engine()
        with _bad_requests_as_http():
            started = engine.start_video(
                video, question, history, engine.generation_args(max_new_tokens, temperature)
            )
        videos_decoded.inc()
        return self._respond("chat", started, stream)

    @bentoml.api
    def chat_features(
        self,
        features: Path,
        question: str = "",
        history: list[dict[str, str]] | None = None,
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        stream: bool = False,
    ) -> dict[str, Any]:
        """Answer ``question`` about precomputed features (a ``.safetensors`` upload)."""
        engine = self._engine()
        with _bad_requests_as_http():
            started = engine.start_features(
                features, question, history, engine.generation_args(max_new_tokens, temperature)
            )
        return self._respond("chat_features", started, stream)

    @bentoml.api
    def extract(
        self, video: Annotated[Path, ContentType("video/*")], context: bentoml.Context
    ) -> Annotated[Path, ContentType("application/octet-stream")]:
        """Return the features of an uploaded video as a ``.safetensors`` file."""
        from videollm.features.store import save_features

        engine = self._engine()
        with _bad_requests_as_http():
            feats, _, _ = engine.features_of(video)
        videos_decoded.inc()
        requests_total.labels(api="extract", outcome="ok").inc()
        # The request's own temp dir: BentoML deletes it after the response is sent.
        return save_features(
            Path(context.temp_dir) / "features.safetensors",
            feats,
            {"encoder": engine.extract_cfg.encoder},
        )


# Label values stay bounded: an unknown path counts as "other", never as itself.
_API_OF_PATH = {method.route: name for name, method in VideoLLMService.apis.items()} | {
    "/v1/chat/completions": "chat_completions",
    "/v1/models": "models",
}


def count_rejected(path: str, status: int) -> None:
    """Count a rejected request (status >= 400) in ``videollm_requests_total``.

    Called by the middleware for every such response, whoever made it (BentoML's input
    validation, the guard's 401/413, the router's 404/405, the engine's :class:`BadRequest`),
    so each is counted once.
    """
    outcome = OUTCOMES.get(status) or ("client_error" if status < 500 else "error")
    requests_total.labels(api=_API_OF_PATH.get(path, "other"), outcome=outcome).inc()


VideoLLMService.add_asgi_middleware(
    GuardMiddleware, max_upload_mb=CONFIG.max_upload_mb, on_reject=count_rejected
)
