"""One request's generation as text: deltas to stream, the answer and its token counts."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

from transformers import PreTrainedTokenizerBase

from videollm.errors import VideoLLMError
from videollm.serve.scheduler import GenerationRequest
from videollm.serve.token_stream import Event, Finished


class GenerationFailed(VideoLLMError):
    """The model failed while generating (an HTTP 500; the server log has the traceback)."""


class Generation:
    """Reads a :class:`GenerationRequest`'s tokens and turns them into text.

    Iterate it (or ``async for`` it) for the text deltas as they come; afterwards
    :attr:`answer`, :attr:`finish_reason` and the token counts are set. Text is decoded from all
    tokens so far each time, so a character spread over several byte-level tokens comes out
    whole, never as a replacement character.
    """

    def __init__(self, request: GenerationRequest, tokenizer: PreTrainedTokenizerBase) -> None:
        self.request = request
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.text = ""  # what was handed out so far
        self.finish_reason: str | None = None
        self.finished_at: float | None = None

    @property
    def prompt_tokens(self) -> int:
        """Prompt length in tokens, the video's positions included."""
        return self.request.prompt_tokens

    @property
    def completion_tokens(self) -> int:
        """Tokens generated (the end-of-sequence token not counted)."""
        return len(self.ids)

    @property
    def answer(self) -> str:
        """The whole answer, surrounding whitespace stripped (as ``generate_answers`` does)."""
        return self.text.strip()

    @property
    def generate_ms(self) -> float:
        """Milliseconds from submission to the last token."""
        end = self.finished_at or time.perf_counter()
        return (end - self.request.submitted) * 1e3

    def cancel(self) -> None:
        """Give up the batch slot; the scheduler drops the row at its next step."""
        self.request.cancel()

    def _advance(self, event: Event) -> str | None:
        """The text ``event`` adds ('' while a character is incomplete); None at the end."""
        if isinstance(event, Finished):
            self.finish_reason = event.reason
            self.finished_at = time.perf_counter()
            if event.error is not None:
                raise GenerationFailed(f"generation failed: {event.error}") from event.error
            self.text = self.text.rstrip()
            return None
        self.ids.append(event)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True).lstrip()
        if text.endswith("\ufffd") or not text.startswith(self.text):
            return ""
        delta, self.text = text[len(self.text) :], text
        return delta

    def __iter__(self) -> Iterator[str]:
        while (delta := self._advance(self.request.stream.get())) is not None:
            if delta:
                yield delta

    async def __aiter__(self) -> AsyncIterator[str]:
        while (delta := self._advance(await self.request.stream.aget())) is not None:
            if delta:
                yield delta

    def wait(self) -> str:
        """Block until done; the answer."""
        for _ in self:
            pass
        return self.answer
