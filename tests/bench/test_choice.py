"""Multiple-choice prompt, reading the chosen option from free text, and accuracy."""

from __future__ import annotations

import pytest

from videollm.bench.choice import LETTERS, choice_prompt, parse_choice, score_choices

OPTIONS = ["a red ball", "a blue cube", "a green cone", "a dog"]
#: Options where one text holds another, and texts that are no articles.
NESTED = ["ball", "red ball", "man is running", "cat"]

# (reply, options, expected index or None, why)
REPLIES = [
    ("(B)", OPTIONS, 1, "bracketed letter"),
    ("B", OPTIONS, 1, "bare letter"),
    ("B.", OPTIONS, 1, "letter and full stop"),
    ("B)", OPTIONS, 1, "letter and bracket"),
    ("b", OPTIONS, 1, "lower-case letter"),
    ("(B) a blue cube", OPTIONS, 1, "letter restated with its text"),
    ("B. a blue cube", OPTIONS, 1, "letter, full stop, text"),
    ("The answer is B", OPTIONS, 1, "answer is"),
    ("Answer: (C)", OPTIONS, 2, "answer colon bracket"),
    ("Best option:(A)", OPTIONS, 0, "MVBench answer prompt kept in the reply"),
    ("A) a red ball", OPTIONS, 0, "continuation after 'Best option:('"),
    ("A. a red ball", OPTIONS, 0, "A as a letter before its own text"),
    ("**C**", OPTIONS, 2, "markdown bold"),
    ("（C）", OPTIONS, 2, "full-width brackets"),
    ("Option D", OPTIONS, 3, "option word"),
    ("answer: a", OPTIONS, 0, "lower-case a after answer"),
    ("a", OPTIONS, 0, "lone lower-case a"),
    ("I think it's B.", OPTIONS, 1, "pronoun I is not option I"),
    ("The correct option is (D) a dog.", OPTIONS, 3, "sentence with letter and text"),
    ("B\nBecause the cube is blue.", OPTIONS, 1, "letter then an explanation"),
    ("a blue cube", OPTIONS, 1, "option text only"),
    ("A Blue Cube!", OPTIONS, 1, "text, other case and punctuation; 'A' is the article"),
    ("I think it is a green cone.", OPTIONS, 2, "option text inside a sentence"),
    ("It is a dog, clearly", OPTIONS, 3, "short option text inside a sentence"),
    ("red ball", NESTED, 1, "longest matching option wins over the one it contains"),
    ("the ball rolls", NESTED, 0, "shorter option on its own"),
    ("A man is running", NESTED, 2, "article A before the text of option C"),
    ("A man is running", OPTIONS, None, "article A is not option A"),
    ("A red ball and a ball", NESTED, None, "two option texts, no letter"),
    ("A or B", OPTIONS, None, "two letters"),
    ("A and C", OPTIONS, None, "two letters with and"),
    ("(A) a red ball (B) a blue cube", OPTIONS, None, "the options restated"),
    ("B a red ball", OPTIONS, None, "letter with another option's text"),
    ("", OPTIONS, None, "empty"),
    ("   ", OPTIONS, None, "blank"),
    ("E", OPTIONS, None, "letter past the last option"),
    ("(F)", OPTIONS, None, "bracketed letter past the last option"),
    ("I don't know", OPTIONS, None, "no letter, no text"),
    ("The video shows vitamin E pills.", OPTIONS, None, "out-of-range capital in prose"),
    ("categories", ["cat", "dog"], None, "an option text inside a word does not count"),
    ("The answer is 4.", ["3", "4", "5"], 1, "numeric options"),
    ("13", ["3", "4", "5"], None, "a number holding an option's digits"),
]


@pytest.mark.parametrize(("reply", "options", "expected"), [r[:3] for r in REPLIES],
                         ids=[r[3] for r in REPLIES])  # fmt: skip
def test_parse_choice(reply: str, options: list[str], expected: int | None) -> None:
    assert parse_choice(reply, options) == expected


def test_parse_choice_without_options_or_text() -> None:
    assert parse_choice("A", []) is None
    assert parse_choice(None, OPTIONS) is None  # type: ignore[arg-type]


def test_choice_prompt_is_mvbench_style() -> None:
    prompt = choice_prompt(" What is shown? ", ["a cat", "a dog "])
    lines = prompt.split("\n")
    assert lines[:4] == ["Question: What is shown?", "Options:", "(A) a cat", "(B) a dog"]
    assert len(lines) == 5 and "letter" in lines[4]
    # The prompt's own lettering reads back: each option line parses to its index.
    for i, line in enumerate(lines[2:4]):
        assert parse_choice(line, ["a cat", "a dog"]) == i
    assert LETTERS[:4] == "ABCD"
    with pytest.raises(ValueError, match="options"):
        choice_prompt("Q?", [])
    with pytest.raises(ValueError, match="options"):
        choice_prompt("Q?", ["x"] * (len(LETTERS) + 1))


def _row(task: str, pred: str, answer: int) -> dict:
    return {"id": f"{task}/{pred}", "task": task, "pred": pred, "options": OPTIONS,
            "answer_index": answer}  # fmt: skip


def test_score_choices_per_task_and_unparsed() -> None:
    rows = [
        _row("action_count", "(A)", 0),  # right
        _row("action_count", "B", 2),  # wrong
        _row("action_count", "no idea", 1),  # unparsed: wrong
        _row("scene_transition", "a green cone", 2),  # right, by text
        _row("scene_transition", "A or B", 0),  # unparsed: wrong
    ]
    metrics = score_choices(rows)
    assert metrics == {
        "accuracy": pytest.approx(2 / 5),
        "accuracy/action_count": pytest.approx(1 / 3),
        "accuracy/scene_transition": pytest.approx(1 / 2),
        "unparsed": 2,
        "count": 5,
    }
    assert list(metrics)[1:3] == ["accuracy/action_count", "accuracy/scene_transition"]


def test_score_choices_edges() -> None:
    assert score_choices([]) == {"accuracy": 0.0, "unparsed": 0, "count": 0}
    with pytest.raises(ValueError, match="lacks pred"):
        score_choices([{"task": "t", "options": OPTIONS, "answer_index": 0}])
    with pytest.raises(ValueError, match="answer_index 4"):
        score_choices([_row("t", "A", 4)])
