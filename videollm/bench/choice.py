"""Multiple-choice questions: the lettered prompt, reading the chosen option from a reply, accuracy.

The prompt follows MVBench's evaluator (OpenGVLab/Ask-Anything ``video_chat2/mvbench.ipynb``
and PLLaVA's ``tasks/eval/mvbench``): ``Question: ...``, ``Options:``, one ``(A) text`` line per
option, then an instruction. Those evaluators read the reply's first word as the letter;
lmms-eval (``lmms_eval/tasks/mvbench/utils.py``) takes an ``A.``-style prefix or else any
single standalone letter. :func:`parse_choice` keeps their spirit (a letter wins) but reads
more: the letter in brackets or after "answer is" anywhere, the option's text alone, and it
refuses to guess when the reply names two options, names a letter past the last option, or
gives a letter and the text of another option.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""Option labels, in order: option ``i`` is ``LETTERS[i]``."""

INSTRUCTION = "Answer with the option's letter from the given choices directly."

# An option's text found in the reply is replaced by NUL, a private-use character coding the
# option's index, NUL: no option pattern or letter pattern can match inside it.
_MARK = "\x00"
_INDEX_BASE = 0xE000

# Words after a lone "A" or "I" that show it is an option letter, not the article or pronoun:
# "A or B", "A is correct", "A because ...". An article is followed by a noun or adjective.
_LETTER_FOLLOWERS = frozenset(
    {"or", "and", "nor", "is", "was", "seems", "because", "since", "as", "would", "should"}
)
_BOUNDARY_AFTER = set(".,;:!?)]\"'\n")
_FULLWIDTH = str.maketrans({"（": "(", "）": ")", "：": ":", "［": "[", "］": "]", "．": "."})

_BRACKETED = re.compile(r"(?<![^\W_])[(\[]\s*([A-Za-z])\s*[)\]]")
_LEADING = re.compile(r"^[\s\"'*>#-]*([A-Za-z])(?=$|[\s.,;:!?)\]])")
_AFTER_PHRASE = re.compile(
    r"\b(?:answer|option|choice)s?(?:\s+(?:is|would\s+be|should\s+be|will\s+be))?"
    r"\s*[:=-]?\s*[(\[]?\s*([A-Za-z])(?![^\W_])",
    re.IGNORECASE,
)
_STANDALONE = re.compile(r"(?<![\w'’-])([A-Z])(?![\w'’-])")


def choice_prompt(question: str, options: Sequence[str]) -> str:
    """The question with its lettered options and the instruction to answer by letter.

    Raises:
        ValueError: No options, or more than there are letters.
    """
    if not 1 <= len(options) <= len(LETTERS):
        raise ValueError(f"a choice question needs 1 to {len(LETTERS)} options, got {len(options)}")
    lines = [f"Question: {question.strip()}", "Options:"]
    lines += [f"({LETTERS[i]}) {str(opt).strip()}" for i, opt in enumerate(options)]
    lines.append(INSTRUCTION)
    return "\n".join(lines)


def _option_pattern(option: str) -> re.Pattern[str] | None:
    """The option's words in order, any case, separated by any punctuation or space."""
    words = re.findall(r"[^\W_]+", str(option).lower())
    if not words:
        return None
    body = r"[\W_]+".join(re.escape(w) for w in words)
    return re.compile(rf"(?<![^\W_]){body}(?![^\W_])", re.IGNORECASE)


def _mark_options(text: str, options: Sequence[str]) -> tuple[str, set[int]]:
    """Replace every option text in ``text`` by a marker; return the text and options found.

    Longer options go first, so an option inside another ("ball" in "red ball") counts only
    where it stands on its own.
    """
    found: set[int] = set()
    order = sorted(range(len(options)), key=lambda i: -len(str(options[i]).strip()))
    for i in order:
        pattern = _option_pattern(options[i])
        if pattern is None:
            continue
        text, count = pattern.subn(f" {_MARK}{chr(_INDEX_BASE + i)}{_MARK} ", text)
        if count:
            found.add(i)
    return text, found


def _is_letter(letter: str, after: str) -> bool:
    """Whether a one-letter token followed by ``after`` is an option letter, not a word.

    Only "A" and "I" are English words. One of them is a letter when nothing, punctuation, a
    line break or a word of :data:`_LETTER_FOLLOWERS` follows it, or the text of its own
    option ("A a red ball"); before another option's text it is the article ("A red ball").
    """
    upper = letter.upper()
    if upper not in "AI":
        return True
    if not after or after[0] in _BOUNDARY_AFTER:
        return True
    rest = after.lstrip(" \t")
    if not rest or rest[0] == "\n":
        return True
    if rest[0] == _MARK and len(rest) > 1:
        return ord(rest[1]) - _INDEX_BASE == LETTERS.index(upper)
    word = re.match(r"[^\W_]+", rest)
    return bool(word) and word.group(0).lower() in _LETTER_FOLLOWERS


def _letters(text: str, n: int) -> set[int]:
    """Indices of the option letters ``text`` names (may be ``>= n`` for a letter too far)."""
    found: set[int] = set()
    for m in _BRACKETED.finditer(text):
        found.add(LETTERS.index(m.group(1).upper()))
    for pattern in (_LEADING, _AFTER_PHRASE):
        for m in pattern.finditer(text):
            if _is_letter(m.group(1), text[m.end(1) :]):
                found.add(LETTERS.index(m.group(1).upper()))
    # A capital letter alone in running text is weaker evidence: count it only when it is a
    # letter of this question ("Vitamin E" with four options is not an answer).
    for m in _STANDALONE.finditer(text):
        index = LETTERS.index(m.group(1))
        if index < n and _is_letter(m.group(1), text[m.end(1) :]):
            found.add(index)
    return found


def parse_choice(reply: str, options: Sequence[str]) -> int | None:
    """The index of the option ``reply`` chooses, or ``None`` when it cannot be told.

    A reply chooses by letter ("B", "(B)", "b.", "B) a red ball", "The answer is B",
    "Best option:(A)") or by the option's text ("a red ball", also inside a sentence; case and
    punctuation do not matter, and an option inside a longer one counts only on its own).
    ``None`` for an empty reply, two letters ("A or B"), a letter past the last option, a
    letter given with another option's text, or the texts of two options and no letter.
    """
    if not isinstance(reply, str) or not options:
        return None
    text = reply.translate(_FULLWIDTH).replace("**", "").replace("__", "").replace("`", "")
    text = text.strip()
    if not text:
        return None
    marked, by_text = _mark_options(text, options)
    by_letter = _letters(marked, len(options))
    if len(by_letter) > 1:
        return None
    if by_letter:
        (index,) = by_letter
        if index >= len(options) or (by_text and index not in by_text):
            return None
        return index
    return next(iter(by_text)) if len(by_text) == 1 else None


def score_choices(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Accuracy of multiple-choice predictions, overall and per task.

    A reply :func:`parse_choice` cannot read counts as a wrong answer (it is in the
    denominator), and is also counted in ``unparsed``.

    Args:
        rows: Dicts with ``task``, ``pred`` (the reply), ``options`` and ``answer_index``.

    Returns:
        ``{"accuracy": ..., "accuracy/<task>": ... for each task, "unparsed": n, "count": n}``;
        accuracies are fractions in ``[0, 1]`` (0.0 for no rows).

    Raises:
        ValueError: A row lacks a key or its ``answer_index`` is not an option.
    """
    correct: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    unparsed = 0
    for pos, row in enumerate(rows):
        missing = [k for k in ("task", "pred", "options", "answer_index") if k not in row]
        if missing:
            raise ValueError(f"row {pos} ({row.get('id', '?')}) lacks {', '.join(missing)}")
        options, answer = row["options"], row["answer_index"]
        if not isinstance(answer, int) or not 0 <= answer < len(options):
            raise ValueError(f"row {pos} ({row.get('id', '?')}): answer_index {answer!r} "
                             f"is not one of its {len(options)} options")  # fmt: skip
        choice = parse_choice(row["pred"], options)
        unparsed += choice is None
        total[row["task"]] += 1
        correct[row["task"]] += choice == answer
    count = sum(total.values())
    out: dict[str, float] = {"accuracy": sum(correct.values()) / count if count else 0.0}
    for task in sorted(total):
        out[f"accuracy/{task}"] = correct[task] / total[task]
    out["unparsed"] = unparsed
    out["count"] = count
    return out
