"""Reference-based text metrics: exact match, token F1, BLEU-4, ROUGE-L and CIDEr-D.

Two text views are used on purpose:

* :func:`normalize_answer` is the SQuAD normalisation (lowercase, no punctuation, no articles,
  single spaces) for short-answer metrics, where "the dog" and "a dog." must count as equal.
* :func:`tokenize` keeps articles and only lowercases and splits punctuation off, like the
  PTB tokenizer coco-caption runs before BLEU, ROUGE-L and CIDEr, because those metrics score
  fluency as well as content.

All scores lie in ``[0, 1]`` except CIDEr, which keeps coco-caption's ×10 scale (0..10).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Literal

_PUNCT = set(string.punctuation)
_PUNCT_RE = re.compile("[" + re.escape(string.punctuation) + "]")
_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")

Smoothing = Literal["none", "epsilon", "add1"]


def normalize_answer(text: str) -> str:
    """SQuAD answer normalisation: lowercase, drop punctuation and articles, squeeze spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = _ARTICLES_RE.sub(" ", text)
    return " ".join(text.split())


def tokenize(text: str) -> list[str]:
    """Lowercase and split on whitespace and punctuation (punctuation itself is dropped)."""
    return _PUNCT_RE.sub(" ", text.lower()).split()


def exact_match(pred: str, ref: str) -> float:
    """1.0 when the normalised prediction equals the normalised reference, else 0.0."""
    return float(normalize_answer(pred) == normalize_answer(ref))


def token_f1(pred: str, ref: str) -> float:
    """SQuAD bag-of-tokens F1 between normalised prediction and reference.

    Two answers that are both empty after normalisation score 1.0 (as SQuAD v2 does); one
    empty side scores 0.0.
    """
    p, r = normalize_answer(pred).split(), normalize_answer(ref).split()
    if not p or not r:
        return float(p == r)
    same = sum((Counter(p) & Counter(r)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(r)
    return 2 * precision * recall / (precision + recall)


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _check_lengths(preds: Sequence[str], refs: Sequence[str]) -> None:
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions but {len(refs)} references")


def bleu4(
    preds: Sequence[str],
    refs: Sequence[str],
    smoothing: Smoothing = "none",
    epsilon: float = 0.1,
) -> float:
    """Corpus BLEU-4 (Papineni et al., 2002) with one reference per prediction.

    Clipped n-gram matches and n-gram totals are summed over the corpus before the geometric
    mean of the four precisions, and the brevity penalty uses total lengths, as in the paper
    (and coco-caption / ``multi-bleu.perl``), not a mean of sentence scores.

    Args:
        preds: Predicted texts.
        refs: Reference texts, aligned with ``preds``.
        smoothing: ``"none"`` — any zero n-gram precision makes BLEU 0 (the standard corpus
            score). ``"epsilon"`` — a zero match count is replaced by ``epsilon`` (Chen &
            Cherry 2014, method 1). ``"add1"`` — add 1 to matches and totals of n = 2..4
            (Lin & Och 2004, "BLEU+1"), useful for single short sentences.
        epsilon: The numerator used for zero counts with ``smoothing="epsilon"``.

    Returns:
        BLEU-4 in ``[0, 1]``; 0.0 for an empty corpus or empty predictions.
    """
    _check_lengths(preds, refs)
    matches, totals = [0.0] * 4, [0.0] * 4
    hyp_len = ref_len = 0
    for pred, ref in zip(preds, refs, strict=True):
        p, r = tokenize(pred), tokenize(ref)
        hyp_len, ref_len = hyp_len + len(p), ref_len + len(r)
        for n in range(1, 5):
            matches[n - 1] += sum((_ngrams(p, n) & _ngrams(r, n)).values())
            totals[n - 1] += max(len(p) - n + 1, 0)
    if hyp_len == 0:
        return 0.0
    log_precision = 0.0
    for n in range(1, 5):
        match, total = matches[n - 1], totals[n - 1]
        if smoothing == "add1" and n > 1:
            match, total = match + 1, total + 1
        if match == 0 and smoothing == "epsilon" and total > 0:
            match = epsilon
        if match == 0 or total == 0:
            return 0.0
        log_precision += math.log(match / total) / 4
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(log_precision)


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    # One rolling row keeps memory O(len(b)); answers are short so O(len(a)·len(b)) time is fine.
    row = [0] * (len(b) + 1)
    for x in a:
        prev_diag = 0
        for j, y in enumerate(b, start=1):
            prev_diag, row[j] = row[j], prev_diag + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def rouge_l(pred: str, ref: str, beta: float = 1.2) -> float:
    """ROUGE-L F-measure of one prediction, from the longest common token subsequence.

    ``beta`` weights recall over precision; 1.2 is coco-caption's value.
    """
    p, r = tokenize(pred), tokenize(ref)
    if not p or not r:
        return 0.0
    lcs = _lcs(p, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return (1 + beta**2) * precision * recall / (recall + beta**2 * precision)


def mean_rouge_l(preds: Sequence[str], refs: Sequence[str], beta: float = 1.2) -> float:
    """ROUGE-L F-measure averaged over the corpus (coco-caption's corpus score)."""
    _check_lengths(preds, refs)
    if not preds:
        return 0.0
    return sum(rouge_l(p, r, beta) for p, r in zip(preds, refs, strict=True)) / len(preds)


_TfIdf = tuple[list[dict[tuple[str, ...], float]], list[float], int]


def _tfidf(
    counts: Counter[tuple[str, ...]], doc_freq: Counter[tuple[str, ...]], log_n_docs: float
) -> _TfIdf:
    vecs: list[dict[tuple[str, ...], float]] = [{} for _ in range(4)]
    norms = [0.0] * 4
    for gram, tf in counts.items():
        weight = tf * (log_n_docs - math.log(max(1.0, doc_freq[gram])))
        vecs[len(gram) - 1][gram] = weight
        norms[len(gram) - 1] += weight * weight
    # coco-caption measures "length" as the bigram count (its ``n == 1`` on a 0-based index);
    # kept so scores match published numbers — it equals words-1, so length deltas agree.
    length = sum(tf for gram, tf in counts.items() if len(gram) == 2)
    return vecs, [math.sqrt(x) for x in norms], length


def cider(preds: Sequence[str], refs: Sequence[str], sigma: float = 6.0) -> float:
    """Corpus CIDEr-D as computed by coco-caption, with one reference per prediction.

    N-grams of order 1..4 are weighted by tf-idf, the document frequency of an n-gram being
    the number of references in the corpus that contain it. Each order contributes the cosine
    similarity of prediction and reference vectors with the prediction's weights clipped to the
    reference's, times a Gaussian length penalty ``exp(-Δ²/2σ²)``; the four orders are averaged
    and scaled by 10.

    Because idf is ``log(N / df)``, a corpus of one pair (or n-grams present in every
    reference) carries no weight: CIDEr is a corpus metric and needs several distinct refs.

    Args:
        preds: Predicted texts.
        refs: Reference texts, aligned with ``preds``.
        sigma: Standard deviation of the length penalty (6 in CIDEr-D).

    Returns:
        Mean CIDEr-D over the corpus, on coco-caption's 0..10 scale; 0.0 for an empty corpus.
    """
    _check_lengths(preds, refs)
    if not preds:
        return 0.0

    def grams(text: str) -> Counter[tuple[str, ...]]:
        tokens = tokenize(text)
        out: Counter[tuple[str, ...]] = Counter()
        for n in range(1, 5):
            out.update(_ngrams(tokens, n))
        return out

    hyp_counts = [grams(p) for p in preds]
    ref_counts = [grams(r) for r in refs]
    doc_freq: Counter[tuple[str, ...]] = Counter()
    for counts in ref_counts:
        doc_freq.update(counts.keys())
    log_n_docs = math.log(len(refs))
    total = 0.0
    for hyp, ref in zip(hyp_counts, ref_counts, strict=True):
        h_vecs, h_norms, h_len = _tfidf(hyp, doc_freq, log_n_docs)
        r_vecs, r_norms, r_len = _tfidf(ref, doc_freq, log_n_docs)
        penalty = math.exp(-((h_len - r_len) ** 2) / (2 * sigma**2))
        score = 0.0
        for n in range(4):
            dot = sum(
                min(w, r_vecs[n].get(g, 0.0)) * r_vecs[n].get(g, 0.0) for g, w in h_vecs[n].items()
            )
            if h_norms[n] != 0 and r_norms[n] != 0:
                score += dot / (h_norms[n] * r_norms[n]) * penalty
        total += score / 4 * 10.0
    return total / len(preds)
