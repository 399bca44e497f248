"""Adaptive batching: concurrent inputs share calls, each gets its own rows back."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from videollm.serve.batcher import Batcher


def _slow_double(x: torch.Tensor) -> torch.Tensor:
    threading.Event().wait(0.02)  # long enough for other requests to queue up
    return x * 2


def test_concurrent_inputs_are_batched_and_split_back():
    batcher = Batcher(_slow_double, max_batch=64, max_latency_ms=20)
    inputs = [torch.full((n, 3), float(i)) for i, n in enumerate([1, 5, 2, 7, 3] * 4)]
    with ThreadPoolExecutor(len(inputs)) as pool:
        outputs = list(pool.map(batcher.submit, inputs))
    for x, y in zip(inputs, outputs, strict=True):
        assert torch.equal(y, x * 2)
    assert batcher.calls < len(inputs)


def test_a_batch_never_exceeds_max_batch():
    sizes: list[int] = []

    def record(x: torch.Tensor) -> torch.Tensor:
        sizes.append(len(x))
        return _slow_double(x)

    batcher = Batcher(record, max_batch=8, max_latency_ms=20)
    inputs = [torch.ones(3, 1) * i for i in range(10)]
    with ThreadPoolExecutor(10) as pool:
        outputs = list(pool.map(batcher.submit, inputs))
    assert all(torch.equal(y, x * 2) for x, y in zip(inputs, outputs, strict=True))
    assert max(sizes) <= 8 and sum(sizes) == 30


def test_an_error_reaches_the_callers_and_the_worker_lives_on():
    def fail_on_negative(x: torch.Tensor) -> torch.Tensor:
        if (x < 0).any():
            raise ValueError("negative input")
        return x

    batcher = Batcher(fail_on_negative, max_latency_ms=1)
    with pytest.raises(ValueError, match="negative input"):
        batcher.submit(-torch.ones(2))
    assert torch.equal(batcher.submit(torch.ones(2)), torch.ones(2))


def test_a_lone_request_does_not_wait_for_company():
    import time

    batcher = Batcher(lambda x: x, max_latency_ms=2000)
    start = time.perf_counter()
    with batcher.coming():
        batcher.submit(torch.ones(1))
    assert time.perf_counter() - start < 1.0  # far below the 2 s batching window


def test_announced_requests_are_waited_for():
    batcher = Batcher(lambda x: x, max_latency_ms=2000)
    release = threading.Event()

    def late_request() -> torch.Tensor:
        with batcher.coming():
            release.wait()  # still "decoding"
            return batcher.submit(torch.zeros(1))

    with ThreadPoolExecutor(2) as pool, batcher.coming():
        late = pool.submit(late_request)
        early = pool.submit(batcher.submit, torch.ones(1))
        threading.Event().wait(0.1)
        release.set()
        early.result(), late.result()
    assert batcher.calls == 1  # the first request waited and both ran in one call
