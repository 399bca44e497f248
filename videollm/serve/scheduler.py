"""Continuous batching: every generating request shares each forward step of the LLM.

One thread owns the LLM and a left-padded batch with its KV cache. Between two decode steps it
admits waiting requests (prefilled together, then merged into the batch's cache by left-padding
the shorter side) and drops finished or cancelled ones, so a request joins or leaves the batch
at the next step and a lone request never waits. Each row keeps its own ``max_new_tokens``,
temperature and stop token; positions are counted per row from its attention mask, exactly as
``transformers``' ``generate`` counts them, so a greedy answer is the same token for token
whether it ran alone or in a batch.

Memory is bounded twice: ``max_batch_size`` rows, and ``max_batch_tokens`` for the batch's
padded KV cache (rows × the longest row's prompt plus ``max_new_tokens``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import DynamicCache

from videollm.serve.token_stream import Finished, TokenStream

logger = logging.getLogger(__name__)


@dataclass
class GenerationRequest:
    """One sequence to generate.

    Attributes:
        embeds: The prompt's input embeddings (T×H), video already spliced in.
        max_new_tokens: Most tokens to generate.
        temperature: 0 for greedy decoding, else the sampling temperature.
        stream: Where the token ids and the final :class:`Finished` go.
        submitted: ``time.perf_counter()`` at submission (for time to first token).
    """

    embeds: torch.Tensor
    max_new_tokens: int
    temperature: float = 0.0
    stream: TokenStream = field(default_factory=TokenStream)
    submitted: float = field(default_factory=time.perf_counter)
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def prompt_tokens(self) -> int:
        """Length of the prompt, video positions included."""
        return int(self.embeds.shape[0])

    @property
    def cost(self) -> int:
        """KV-cache positions this row may come to hold."""
        return self.prompt_tokens + self.max_new_tokens

    def cancel(self) -> None:
        """Ask the scheduler to drop this request at its next step."""
        self.cancelled.set()


@dataclass
class _Row:
    request: GenerationRequest
    generated: int = 0
    last_token_at: float = 0.0


class Observer:
    """Told what the scheduler does; the service turns these into Prometheus histograms."""

    def first_token(self, seconds: float) -> None:
        """Time from submission to a request's first token."""

    def inter_token(self, seconds: float) -> None:
        """Time between two tokens of one request."""

    def batch(self, size: int) -> None:
        """Rows in a forward step."""

    def cancelled(self, generated: int) -> None:
        """A request left before its end (its client went away) after ``generated`` tokens."""


class Scheduler:
    """Runs generation for all requests on one thread, batched.

    Args:
        llm: The causal LM (``VideoLLM.llm``): takes ``inputs_embeds`` or ``input_ids``,
            ``attention_mask``, ``position_ids`` and ``past_key_values``.
        eos_token_id: Ends a row (``finish_reason`` ``stop``).
        max_batch_size: Most rows in the batch.
        max_batch_tokens: Most KV-cache positions of the padded batch.
        observer: Receives timings and batch sizes.
    """

    def __init__(
        self,
        llm: nn.Module,
        eos_token_id: int | None,
        max_batch_size: int = 16,
        max_batch_tokens: int = 32768,
        observer: Observer | None = None,
    ) -> None:
        self.llm = llm
        self.eos_token_id = eos_token_id
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.observer = observer or Observer()
        self.steps = 0  # forward passes run; fewer than the tokens made when batching works
        self.largest_batch = 0
        self._waiting: queue.Queue[GenerationRequest] = queue.Queue()
        self._held: GenerationRequest | None = None  # did not fit the budget; admitted first
        self._rows: list[_Row] = []
        self._cache: DynamicCache | None = None
        self._mask: torch.Tensor | None = None  # B×L, left-padded
        self._last: torch.Tensor | None = None  # B, the token each row feeds next
        threading.Thread(target=self._work, name="videollm-generate", daemon=True).start()

    def submit(self, request: GenerationRequest) -> GenerationRequest:
        """Queue ``request``; its tokens arrive in ``request.stream``."""
        self._waiting.put(request)
        return request

    # ---- the loop ---------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            admitted = self._admit(block=not self._rows)
            if admitted:
                try:
                    self._prefill(admitted)
                except Exception as err:  # only the new prompts fail; the batch goes on
                    self._fail(admitted, err)
            try:
                self._drop_finished()
                if self._rows:
                    self._decode()
                    self._drop_finished()
            except Exception as err:  # every row gets the error; the thread lives on
                self._fail([row.request for row in self._rows], err)
                self._rows, self._cache, self._mask, self._last = [], None, None, None

    @staticmethod
    def _fail(requests: list[GenerationRequest], err: Exception) -> None:
        logger.error("generation failed for %d request(s)", len(requests), exc_info=err)
        for request in requests:
            request.stream.put(Finished("error", err))

    def _fits(self, request: GenerationRequest, rows: list[_Row], new: list) -> bool:
        count = len(rows) + len(new)
        if count == 0:
            return True  # alone it always runs; the engine refuses what exceeds the budget
        if count >= self.max_batch_size:
            return False
        costs = [r.request.cost for r in rows] + [r.cost for r in new] + [request.cost]
        return (count + 1) * max(costs) <= self.max_batch_tokens

    def _admit(self, block: bool) -> list[GenerationRequest]:
        """Take waiting requests that fit; wait for the first one when nothing runs."""
        admitted: list[GenerationRequest] = []
        while True:
            if self._held is not None:
                request, self._held = self._held, None
            else:
                try:
                    request = self._waiting.get(block=block and not admitted)
                except queue.Empty:
                    return admitted
            if request.cancelled.is_set():
                request.stream.put(Finished("cancelled"))
                continue
            if not self._fits(request, self._rows, admitted):
                self._held = request
                return admitted
            admitted.append(request)

    @torch.inference_mode()
    def _prefill(self, requests: list[GenerationRequest]) -> None:
        """Run the new prompts together and merge them into the running batch."""
        longest = max(r.prompt_tokens for r in requests)
        first = requests[0].embeds
        embeds = first.new_zeros((len(requests), longest, first.shape[1]))
        mask = torch.zeros((len(requests), longest), dtype=torch.long, device=first.device)
        for i, r in enumerate(requests):
            embeds[i, longest - r.prompt_tokens :] = r.embeds
            mask[i, longest - r.prompt_tokens :] = 1
        # As ``generate`` numbers them: from 0 at each row's first real token.
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
        cache = DynamicCache()
        out = self.llm(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self._count_step(len(requests))
        tokens = self._sample(out.logits[:, -1], [r.temperature for r in requests])
        rows = [_Row(r) for r in requests]
        self._merge(rows, cache, mask, tokens)
        self._emit(rows, tokens.tolist())

    @torch.inference_mode()
    def _decode(self) -> None:
        """One step for every row: feed each its last token, emit the next."""
        assert self._mask is not None and self._last is not None
        self._mask = torch.cat([self._mask, self._mask.new_ones((len(self._rows), 1))], dim=1)
        positions = self._mask.sum(-1, keepdim=True) - 1
        out = self.llm(
            input_ids=self._last[:, None],
            attention_mask=self._mask,
            position_ids=positions,
            past_key_values=self._cache,
            use_cache=True,
        )
        self._count_step(len(self._rows))
        tokens = self._sample(out.logits[:, -1], [r.request.temperature for r in self._rows])
        self._last = tokens
        self._emit(self._rows, tokens.tolist())

    def _count_step(self, size: int) -> None:
        self.steps += 1
        self.largest_batch = max(self.largest_batch, size)
        self.observer.batch(size)

    @staticmethod
    def _sample(logits: torch.Tensor, temperatures: list[float]) -> torch.Tensor:
        """Argmax for greedy rows, a draw from softmax(logits / T) for the others."""
        tokens = logits.argmax(-1)
        hot = [i for i, t in enumerate(temperatures) if t > 0]
        if hot:
            temps = torch.tensor([temperatures[i] for i in hot], device=logits.device)
            probs = torch.softmax(logits[hot].float() / temps[:, None], dim=-1)
            tokens[hot] = torch.multinomial(probs, 1).squeeze(1)
        return tokens

    def _emit(self, rows: list[_Row], tokens: list[int]) -> None:
        now = time.perf_counter()
        for row, token in zip(rows, tokens, strict=True):
            if row.generated == 0:
                self.observer.first_token(now - row.request.submitted)
            else:
                self.observer.inter_token(now - row.last_token_at)
            row.generated += 1
            row.last_token_at = now
            if token != self.eos_token_id:
                row.request.stream.put(token)  # the end-of-sequence token is not text

    # ---- the batch's cache ------------------------------------------------------------
    def _merge(
        self, rows: list[_Row], cache: DynamicCache, mask: torch.Tensor, tokens: torch.Tensor
    ) -> None:
        """Append prefilled ``rows`` to the batch, left-padding whichever side is shorter."""
        if not self._rows:
            self._rows, self._cache, self._mask, self._last = rows, cache, mask, tokens
            return
        assert self._cache is not None and self._mask is not None and self._last is not None
        length = max(self._mask.shape[1], mask.shape[1])
        # Every tensor is built before any is assigned: a failure leaves the batch as it was.
        merged = [
            (
                torch.cat([_left_pad(old.keys, length), _left_pad(new.keys, length)]),
                torch.cat([_left_pad(old.values, length), _left_pad(new.values, length)]),
            )
            for old, new in zip(self._cache.layers, cache.layers, strict=True)
        ]
        mask = torch.cat([_left_pad(self._mask, length), _left_pad(mask, length)])
        for layer, (keys, values) in zip(self._cache.layers, merged, strict=True):
            layer.keys, layer.values = keys, values
        self._mask = mask
        self._last = torch.cat([self._last, tokens])
        self._rows = self._rows + rows

    def _drop_finished(self) -> None:
        """Remove rows that ended or whose client left, and padding no row needs any more."""
        keep = []
        for i, row in enumerate(self._rows):
            request = row.request
            if request.cancelled.is_set():
                logger.info("dropped a cancelled request after %d tokens", row.generated)
                self.observer.cancelled(row.generated)
                request.stream.put(Finished("cancelled"))
            elif self._last is not None and int(self._last[i]) == self.eos_token_id:
                request.stream.put(Finished("stop"))
            elif row.generated >= request.max_new_tokens:
                request.stream.put(Finished("length"))
            else:
                keep.append(i)
        if len(keep) == len(self._rows):
            return
        if not keep:
            self._rows, self._cache, self._mask, self._last = [], None, None, None
            return
        assert self._cache is not None and self._mask is not None and self._last is not None
        index = torch.tensor(keep, device=self._mask.device)
        mask = self._mask[index]
        start = int((mask.sum(0) > 0).nonzero()[0])  # leading columns that are padding in all
        for layer in self._cache.layers:
            layer.keys = layer.keys[index, :, start:]
            layer.values = layer.values[index, :, start:]
        self._mask, self._last = mask[:, start:], self._last[index]
        self._rows = [self._rows[i] for i in keep]


def _left_pad(t: torch.Tensor, length: int) -> torch.Tensor:
    """``t`` (B×L or B×H×L×D) padded with zeros on the left of its sequence axis to ``length``."""
    axis = 1 if t.dim() == 2 else 2
    missing = length - t.shape[axis]
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[axis] = missing
    return torch.cat([t.new_zeros(shape), t], dim=axis)
