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

    Iterate it (or ``async for`` it) for the text deltas as they come, or :meth:`wait` /
    :meth:`finish` for the end; afterwards :attr:`answer`, :attr:`finish_reason` and the token
    counts are set. A character spread over several byte-level tokens comes out whole, never
    as a replacement character.
    """

    def __init__(self, request: GenerationRequest, tokenizer: PreTrainedTokenizerBase) -> None:
        self.request = request
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.text = ""  # what was handed out so far; the whole answer once finished
        self._prefix = self._read = 0  # the decode window of streaming: ids[_prefix:]
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
        """The answer (so far, while streaming), surrounding whitespace stripped, as
        ``generate_answers`` gives it."""
        return self.text.strip()

    @property
    def generate_ms(self) -> float:
        """Milliseconds from submission to the last token."""
        end = self.finished_at or time.perf_counter()
        return (end - self.request.submitted) * 1e3

    def cancel(self) -> None:
        """Give up the batch slot; the scheduler drops the row at its next step."""
        self.request.cancel()

    def _advance(self, event: Event, stream: bool = True) -> str | None:
        """The text ``event`` adds ('' while a character is incomplete); None at the end.

        Deltas come from decoding a short window of recent tokens (as TGI does), so streaming
        costs O(1) per token; the answer itself is decoded from all tokens at the end, so a
        tokenizer that rewrites earlier text (space clean-up) never truncates it.
        """
        if isinstance(event, Finished):
            self.finish_reason = event.reason
            self.finished_at = time.perf_counter()
            if event.error is not None:
                raise GenerationFailed(f"generation failed: {event.error}") from event.error
            self.text = self.tokenizer.decode(self.ids, skip_special_tokens=True).strip()
            return None
        self.ids.append(event)
        if not stream:
            return ""
        decode = self.tokenizer.decode
        before = decode(self.ids[self._prefix : self._read], skip_special_tokens=True)
        after = decode(self.ids[self._prefix :], skip_special_tokens=True)
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return ""  # nothing new yet, or half a character
        delta = after[len(before) :]
        self._prefix, self._read = self._read, len(self.ids)
        if not self.text:
            delta = delta.lstrip()  # as the answer is stripped
        self.text += delta
        return delta

    def __iter__(self) -> Iterator[str]:
        while (delta := self._advance(self.request.stream.get())) is not None:
            if delta:
                yield delta

    async def __aiter__(self) -> AsyncIterator[str]:
        while (delta := self._advance(await self.request.stream.aget())) is not None:
            if delta:
                yield delta

    async def finish(self) -> str:
        """Await the end without streaming; the answer."""
        while self._advance(await self.request.stream.aget(), stream=False) is not None:
            pass
        return self.answer

    def wait(self) -> str:
        """Block until done; the answer."""
        while self._advance(self.request.stream.get(), stream=False) is not None:
            pass
        return self.answer
