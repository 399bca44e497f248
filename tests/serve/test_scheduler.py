"""Continuous batching: batched greedy answers equal unbatched ones, rows join and leave
between steps, and the batch limits hold. On a random Llama, against ``transformers``'
own ``generate`` one prompt at a time."""

from __future__ import annotations

import time

import pytest
import torch
from transformers import AutoModelForCausalLM

from videollm.demo.tiny_models import build_tiny_llm
from videollm.serve.scheduler import GenerationRequest, Scheduler
from videollm.serve.token_stream import Finished

LENGTHS = (5, 17, 9, 30, 12, 3, 22)
MAX_NEW = (20, 7, 25, 12, 30, 1, 16)


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    path = build_tiny_llm(tmp_path_factory.mktemp("sched_llm"), hidden_size=64, num_layers=2)
    return AutoModelForCausalLM.from_pretrained(path).eval()


@pytest.fixture(scope="module")
def prompts(llm):
    torch.manual_seed(0)
    embed = llm.get_input_embeddings()
    with torch.no_grad():
        return [embed(torch.randint(3, 300, (n,))) for n in LENGTHS]


def reference(llm, embeds: torch.Tensor, max_new: int, eos: int | None) -> list[int]:
    """``generate`` on the prompt alone: no padding, no other rows."""
    out = llm.generate(
        inputs_embeds=embeds[None],
        attention_mask=torch.ones(1, len(embeds), dtype=torch.long),
        max_new_tokens=max_new,
        do_sample=False,
        pad_token_id=0,
        eos_token_id=eos,
    )
    tokens = out[0].tolist()
    return tokens[: tokens.index(eos)] if eos in tokens else tokens


def drain(request: GenerationRequest) -> tuple[list[int], Finished]:
    tokens = []
    while not isinstance(event := request.stream.get(), Finished):
        tokens.append(event)
    return tokens, event


def run_staggered(scheduler: Scheduler, prompts, max_new, temperatures=None):
    """Submit one by one, a little apart, so later requests join a batch mid-decode."""
    temperatures = temperatures or [0.0] * len(prompts)
    requests = []
    for embeds, n, t in zip(prompts, max_new, temperatures, strict=True):
        requests.append(scheduler.submit(GenerationRequest(embeds, n, t)))
        time.sleep(0.002)
    return [drain(r) for r in requests]


def test_batched_greedy_answers_equal_unbatched_ones(llm, prompts):
    # An end token that the first prompt's answer reaches early: rows then stop on their own.
    eos = reference(llm, prompts[0], 20, None)[4]
    expected = [reference(llm, p, n, eos) for p, n in zip(prompts, MAX_NEW, strict=True)]
    scheduler = Scheduler(llm, eos_token_id=eos, max_batch_size=4)
    results = run_staggered(scheduler, prompts, MAX_NEW)
    for (tokens, end), want, n in zip(results, expected, MAX_NEW, strict=True):
        assert tokens == want
        assert end.reason == ("length" if len(want) == n else "stop")
    assert len(expected[0]) == 4  # the first row did stop at the end token
    # Batching happened: fewer forward passes than tokens, never more rows than allowed.
    assert scheduler.steps < sum(len(t) for t, _ in results)
    assert scheduler.largest_batch == 4


def test_a_sampling_row_does_not_change_the_greedy_rows_beside_it(llm, prompts):
    expected = [reference(llm, p, 12, None) for p in prompts[:3]]
    scheduler = Scheduler(llm, eos_token_id=None, max_batch_size=8)
    temps = [0.0, 1.5, 0.0]
    (first, _), (sampled, _), (third, _) = run_staggered(scheduler, prompts[:3], [12] * 3, temps)
    assert (first, third) == (expected[0], expected[2])
    assert len(sampled) == 12


def test_the_token_budget_bounds_the_padded_batch(llm, prompts):
    # Each row may reach 30 + 12 = 42 positions: 100 tokens hold two rows, not three.
    scheduler = Scheduler(llm, eos_token_id=None, max_batch_size=8, max_batch_tokens=100)
    same = [prompts[3]] * 4
    results = run_staggered(scheduler, same, [12] * 4)
    assert scheduler.largest_batch == 2
    assert all(tokens == results[0][0] and len(tokens) == 12 for tokens, _ in results)


def test_a_cancelled_request_frees_its_row_at_the_next_step(llm, prompts):
    scheduler = Scheduler(llm, eos_token_id=None, max_batch_size=1)
    long = scheduler.submit(GenerationRequest(prompts[0], 10_000))
    assert isinstance(long.stream.get(), int)  # it is generating, and holds the only row
    waiting = scheduler.submit(GenerationRequest(prompts[1], 5))
    long.cancel()
    tokens, end = drain(waiting)  # runs only once the long one has left the batch
    assert len(tokens) == 5 and end.reason == "length"
    rest, finished = drain(long)
    assert finished.reason == "cancelled" and len(rest) < 10_000


def test_a_lone_request_does_not_wait(llm, prompts):
    scheduler = Scheduler(llm, eos_token_id=None)
    tokens, end = drain(scheduler.submit(GenerationRequest(prompts[2], 3)))
    assert len(tokens) == 3 and end.reason == "length"
    assert scheduler.steps == 3  # one prefill and two decode steps, no batch of one waiting


def test_a_failing_step_fails_its_rows_and_the_loop_lives_on(llm, prompts):
    scheduler = Scheduler(llm, eos_token_id=None)
    bad = torch.zeros((4, 7))  # not the LLM's width
    _, end = drain(scheduler.submit(GenerationRequest(bad, 3)))
    assert end.reason == "error" and end.error is not None
    tokens, end = drain(scheduler.submit(GenerationRequest(prompts[2], 3)))
    assert tokens == reference(llm, prompts[2], 3, None) and end.reason == "length"
