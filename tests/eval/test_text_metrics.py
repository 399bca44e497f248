"""Hand-checked values for the text metrics."""

from __future__ import annotations

import math

import pytest

from videollm.eval.text_metrics import (
    bleu4,
    cider,
    exact_match,
    mean_rouge_l,
    normalize_answer,
    rouge_l,
    token_f1,
    tokenize,
)


def test_normalize_answer_is_squad_style() -> None:
    assert normalize_answer("  The Cat, sat on  a MAT! ") == "cat sat on mat"
    assert tokenize("The cat, sat.") == ["the", "cat", "sat"]


def test_identical_strings_score_one() -> None:
    s = "a man is slicing a red tomato on the table"
    assert exact_match(s, s) == 1.0
    assert token_f1(s, s) == 1.0
    assert bleu4([s], [s]) == pytest.approx(1.0)
    assert rouge_l(s, s) == pytest.approx(1.0)


def test_disjoint_strings_score_zero() -> None:
    a, b = "dog runs fast outside today", "purple elephants sing loudly"
    assert exact_match(a, b) == 0.0
    assert token_f1(a, b) == 0.0
    assert bleu4([a], [b]) == 0.0
    assert rouge_l(a, b) == 0.0
    assert cider([a, b], [b, a]) == 0.0


def test_exact_match_ignores_articles_case_punctuation() -> None:
    assert exact_match("The dog.", "a dog") == 1.0
    assert exact_match("Yes", "no") == 0.0


def test_token_f1_partial_overlap() -> None:
    # pred -> [red, car, parked], ref -> [red, truck, parked, outside]; common = 2
    # P = 2/3, R = 2/4, F1 = 2PR/(P+R) = (2/3)/(7/6) = 4/7
    assert token_f1("a red car parked", "the red truck parked outside") == pytest.approx(4 / 7)


def test_token_f1_empty_answers() -> None:
    assert token_f1("the", "a") == 1.0  # both empty after normalisation
    assert token_f1("", "dog") == 0.0


def test_bleu4_partial_overlap_by_hand() -> None:
    # pred: the cat sat on the mat / ref: the cat sat on a mat (6 tokens each, BP = 1)
    # p1 = 5/6 (second "the" clipped), p2 = 3/5, p3 = 2/4, p4 = 1/3
    # BLEU = (5/6 * 3/5 * 1/2 * 1/3) ** (1/4) = (1/12) ** 0.25
    pred, ref = "the cat sat on the mat", "the cat sat on a mat"
    assert bleu4([pred], [ref]) == pytest.approx((1 / 12) ** 0.25)


def test_bleu4_brevity_penalty_and_corpus_pooling() -> None:
    # pred is the first 4 of 6 reference tokens: every precision is 1, BP = exp(1 - 6/4)
    assert bleu4(["the cat sat on"], ["the cat sat on the mat"]) == pytest.approx(math.exp(-0.5))
    # Corpus BLEU pools counts: a perfect long pair rescues a pair with no 4-gram match.
    preds = ["one two three four five", "six seven"]
    refs = ["one two three four five", "six eight"]
    # p1 = 6/7, p2 = 4/5, p3 = 3/3, p4 = 2/2, lengths 7 vs 7
    assert bleu4(preds, refs) == pytest.approx((6 / 7 * 4 / 5) ** 0.25)


def test_bleu4_smoothing_options() -> None:
    pred, ref = "the cat sat", "the cat ran"  # p1 = 2/3, p2 = 1/2, p3 = 0/1, no 4-grams
    assert bleu4([pred], [ref]) == 0.0
    # add1 on n >= 2: (2/3 * 2/3 * 1/2 * 1/1) ** 0.25
    assert bleu4([pred], [ref], smoothing="add1") == pytest.approx((2 / 9) ** 0.25)
    # epsilon: zero match count -> 0.1, but there are still no 4-grams at all -> 0
    assert bleu4([pred], [ref], smoothing="epsilon") == 0.0
    pred4, ref4 = "the cat sat down", "the cat ran off"  # p1 2/4, p2 1/3, p3 0/2, p4 0/1
    expected = (2 / 4 * 1 / 3 * 0.1 / 2 * 0.1 / 1) ** 0.25
    assert bleu4([pred4], [ref4], smoothing="epsilon") == pytest.approx(expected)


def test_bleu4_edge_cases() -> None:
    assert bleu4([], []) == 0.0
    assert bleu4([""], ["a cat"]) == 0.0
    with pytest.raises(ValueError):
        bleu4(["a"], [])


def test_rouge_l_by_hand() -> None:
    # LCS(the cat sat on the mat, the cat sat on a mat) = 5, P = R = 5/6 -> F = 5/6 for any beta
    assert rouge_l("the cat sat on the mat", "the cat sat on a mat") == pytest.approx(5 / 6)
    # pred "police chase car" vs ref "a police car": LCS = 2 (police car), P = 2/3, R = 2/3
    # beta = 1.2 -> F = (1 + 1.44) P R / (R + 1.44 P) = 2/3
    assert rouge_l("police chase car", "a police car") == pytest.approx(2 / 3)
    # pred "dog" vs ref "the big dog": LCS 1, P = 1, R = 1/3
    # F = 2.44 * 1/3 / (1/3 + 1.44) = 0.8133 / 1.7733 = 0.45865
    assert rouge_l("dog", "the big dog") == pytest.approx(2.44 / 3 / (1 / 3 + 1.44))
    assert mean_rouge_l(["dog", "x"], ["the big dog", "x"]) == pytest.approx(
        (2.44 / 3 / (1 / 3 + 1.44) + 1) / 2
    )
    assert mean_rouge_l([], []) == 0.0


def test_cider_identical_corpus_scores_ten() -> None:
    # Disjoint vocabularies: every n-gram has df = 1, idf = log 2 > 0, cosine 1 for n = 1..4.
    docs = ["a man slices red tomatoes", "two dogs play in snow"]
    assert cider(docs, docs) == pytest.approx(10.0)


def test_cider_partial_overlap_by_hand() -> None:
    # N = 2 refs, idf of every ref n-gram = log 2 - log 1 = log 2 (call it w).
    # Pair 1 "red car" == "red car": n=1 cosine 1, n=2 cosine 1, n=3,4 empty -> 0.
    #   mean over 4 orders = 0.5, x10 = 5.
    # Pair 2 "blue sky" vs "blue sea": unigram vectors (blue w, sky w) vs (blue w, sea w),
    #   clipped dot = w^2, norms sqrt(2) w each -> 1/2; bigrams disjoint -> 0.
    #   mean = 0.125, x10 = 1.25.  Lengths equal -> no penalty.  CIDEr = (5 + 1.25) / 2.
    assert cider(["red car", "blue sky"], ["red car", "blue sea"]) == pytest.approx(3.125)


def test_cider_length_penalty_and_single_pair() -> None:
    # Only the length differs from an exact match: each order is scaled by exp(-d^2 / 72).
    refs = ["a man slices red tomatoes", "two dogs play in snow"]
    longer = ["a man slices red tomatoes a man slices red tomatoes", refs[1]]
    assert 0 < cider(longer, refs) < 10.0
    # One pair: idf = log(1/1) = 0, so CIDEr carries no weight (documented behaviour).
    assert cider(["a b c"], ["a b c"]) == 0.0
    assert cider([], []) == 0.0
