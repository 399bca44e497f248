"""Prompts for the LLM judge, following Video-ChatGPT's quantitative evaluation protocol.

The structure and the reply formats are Video-ChatGPT's
(``quantitative_evaluation/evaluate_benchmark_*.py`` and ``evaluate_activitynet_qa.py``):
each generative criterion asks for ``{'score': <0-5>}`` and QA asks for
``{'pred': 'yes'|'no', 'score': <0-5>}``, on the same 0–5 scale. The wording is ours, and a
judge's strictness follows its prompt as much as its model, so these scores are comparable
with each other under one judge model, not with published GPT-3.5 numbers.
"""

from __future__ import annotations

from typing import Any

CRITERIA: tuple[str, ...] = ("qa", "correctness", "detail", "context", "temporal", "consistency")
"""Every criterion the judge knows; ``qa`` is the zero-shot QA accuracy/score protocol."""

_SYSTEM = (
    "You are a careful evaluator of answers that an AI model gave to questions about videos. "
    "You compare the model's predicted answer with a reference answer written by a person. "
    "INSTRUCTIONS:\n{rules}\n- Treat synonyms and paraphrases as equivalent.\n"
    "- Judge only against the reference; do not reward length or style."
)

_RULES = {
    "qa": "- Decide whether the predicted answer means the same as the reference answer.",
    "correctness": (
        "- Rate the factual correctness of the predicted answer.\n"
        "- It must not contradict the reference or state facts the reference does not support."
    ),
    "detail": (
        "- Rate how detailed and complete the predicted answer is.\n"
        "- It should cover the main points of the reference with specific, not generic, content."
    ),
    "context": (
        "- Rate how well the predicted answer understands the context of the video.\n"
        "- It should match the overall theme of the reference and add nothing out of context."
    ),
    "temporal": (
        "- Rate the temporal understanding of the predicted answer.\n"
        "- The order and timing of the events it describes should agree with the reference."
    ),
    "consistency": (
        "- Two questions ask for the same information in different words.\n"
        "- Rate whether the two predicted answers agree with each other and with the reference."
    ),
}

_ASK_SCORE = (
    "Give an integer score from 0 to 5, where 5 is best. Reply ONLY with a Python dictionary "
    "string with the key 'score' whose value is an INTEGER, not a string, for example "
    "{'score': 4}. Do not add any other text or explanation."
)

_ASK_QA = (
    "Say whether the prediction matches the reference ('yes' or 'no') and give an integer match "
    "score from 0 to 5, where 5 is a perfect match. Reply ONLY with a Python dictionary string "
    "with the keys 'pred' (the string 'yes' or 'no') and 'score' (an INTEGER, not a string), for "
    "example {'pred': 'yes', 'score': 4}. Do not add any other text or explanation."
)


def needs_second_answer(criterion: str) -> bool:
    """Whether ``criterion`` needs a second question and answer (``question2``/``pred2``)."""
    return criterion == "consistency"


def build_messages(criterion: str, row: dict[str, Any]) -> list[dict[str, str]]:
    """Chat messages asking the judge to score ``row`` on ``criterion``.

    Args:
        criterion: One of :data:`CRITERIA`.
        row: A prediction with ``question``, ``answer`` and ``pred``; ``consistency`` also reads
            ``question2`` and ``pred2``.

    Raises:
        ValueError: For an unknown criterion.
    """
    if criterion not in _RULES:
        raise ValueError(f"unknown judge criterion {criterion!r}; choose from {list(CRITERIA)}")
    if needs_second_answer(criterion):
        body = (
            f"Question 1: {row['question']}\nQuestion 2: {row['question2']}\n"
            f"Reference answer: {row['answer']}\n"
            f"Predicted answer to question 1: {row['pred']}\n"
            f"Predicted answer to question 2: {row['pred2']}"
        )
    else:
        body = (
            f"Question: {row['question']}\nReference answer: {row['answer']}\n"
            f"Predicted answer: {row['pred']}"
        )
    ask = _ASK_QA if criterion == "qa" else _ASK_SCORE
    return [
        {"role": "system", "content": _SYSTEM.format(rules=_RULES[criterion])},
        {
            "role": "user",
            "content": f"Please evaluate this video question-answer pair.\n\n{body}\n\n{ask}",
        },
    ]
