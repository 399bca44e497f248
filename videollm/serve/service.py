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
from videollm.serve.engine import Answer, BadRequest, Engine
from videollm.serve.middleware import GuardMiddleware
from videollm.serve.serve_config import ServeConfig

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
# waits for a thread; ``VIDEOLLM_MAX_CONCURRENT_GENERATIONS`` still bounds generation memory.
MAX_CONCURRENCY = 32


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
                self.engine = Engine(CONFIG)
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

    def _reply(self, api: str, answer: Answer) -> dict[str, Any]:
        requests_total.labels(api=api, outcome="ok").inc()
        return {
            "answer": answer.answer,
            "model_version": self._engine().version,
            "timings": {
                "decode_ms": round(answer.decode_ms, 2),
                "encode_ms": round(answer.encode_ms, 2),
                "generate_ms": round(answer.generate_ms, 2),
            },
        }

    @bentoml.api
    def chat(
        self,
        video: Annotated[Path, ContentType("video/*")],
        question: str = "",
        history: list[dict[str, str]] | None = None,
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
    ) -> dict[str, Any]:
        """Answer ``question`` about an uploaded video.

        ``max_new_tokens`` defaults to 128, or ``VIDEOLLM_MAX_NEW_TOKENS`` when that is lower.
        """
        engine = self._engine()
        with _bad_requests_as_http():
            answer = engine.answer_video(
                video, question, history, engine.generation_args(max_new_tokens, temperature)
            )
        videos_decoded.inc()
        return self._reply("chat", answer)

    @bentoml.api
    def chat_features(
        self,
        features: Path,
        question: str = "",
        history: list[dict[str, str]] | None = None,
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
    ) -> dict[str, Any]:
        """Answer ``question`` about precomputed features (a ``.safetensors`` upload)."""
        engine = self._engine()
        with _bad_requests_as_http():
            answer = engine.answer_features(
                features, question, history, engine.generation_args(max_new_tokens, temperature)
            )
        return self._reply("chat_features", answer)

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
_API_OF_PATH = {method.route: name for name, method in VideoLLMService.apis.items()}


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
