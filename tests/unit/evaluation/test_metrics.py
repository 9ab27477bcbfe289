"""Retrieval metrics: hand-computed cases, ties, repeats, empty and unanswerable queries."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest

from mmsearch_cli.evaluation.metrics import (
    average_precision,
    is_answerable,
    mrr_at_k,
    ndcg_at_k,
    percentile,
    rank_with_ties,
    recall_at_k,
    summarise,
)
from tests.conftest import ROOT

RANKED = ["a", "b", "c", "d"]
REL = {"b": 2, "d": 1, "e": 2}  # e is relevant but was never retrieved


def test_ndcg_hand_computed() -> None:
    # Gains 2^g - 1: b -> 3, d -> 1. Discount 1/log2(rank + 1).
    # DCG@3  = 3/log2(3)                         (b at rank 2; a, c earn 0)
    # IDCG@3 = 3/log2(2) + 3/log2(3) + 1/log2(4)  (ideal grades 2, 2, 1; e counts)
    #        = 3 + 1.8927892607 + 0.5
    # nDCG@3 = 1.8927892607 / 5.3927892607 = 0.350985...
    expected = (3 / math.log2(3)) / (3 + 3 / math.log2(3) + 0.5)
    assert ndcg_at_k(RANKED, REL, 3) == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(0.350985, abs=1e-6)
    # nDCG@4 adds d at rank 4: 1/log2(5); the ideal stays the same (only 3 relevant items).
    expected4 = (3 / math.log2(3) + 1 / math.log2(5)) / (3 + 3 / math.log2(3) + 0.5)
    assert ndcg_at_k(RANKED, REL, 4) == pytest.approx(expected4, abs=1e-9)
    # A perfect list scores 1.
    assert ndcg_at_k(["b", "e", "d"], REL, 3) == pytest.approx(1.0, abs=1e-12)


def test_recall_hand_computed_and_min_grade() -> None:
    # R = 3 (b, d, e). Top 3 holds b -> 1/3; top 4 holds b and d -> 2/3.
    assert recall_at_k(RANKED, REL, 3) == pytest.approx(1 / 3, abs=1e-12)
    assert recall_at_k(RANKED, REL, 4) == pytest.approx(2 / 3, abs=1e-12)
    # min_grade=2: R = 2 (b, e); only b is found -> 1/2, at k=2 already.
    assert recall_at_k(RANKED, REL, 2, min_grade=2) == pytest.approx(0.5, abs=1e-12)
    assert recall_at_k(RANKED, REL, 1, min_grade=2) == 0.0


def test_mrr_hand_computed() -> None:
    # First relevant (b) at rank 2 -> 1/2; not within k=1 -> 0.
    assert mrr_at_k(RANKED, REL, 3) == pytest.approx(0.5, abs=1e-12)
    assert mrr_at_k(RANKED, REL, 1) == 0.0
    # With min_grade=2 only b/e count: still b at rank 2. Ranked [d, b]: d counts at grade 1.
    assert mrr_at_k(["d", "b"], REL, 5) == pytest.approx(1.0, abs=1e-12)
    assert mrr_at_k(["d", "b"], REL, 5, min_grade=2) == pytest.approx(0.5, abs=1e-12)


def test_average_precision_hand_computed() -> None:
    # Relevant hits at rank 2 (precision 1/2) and rank 4 (precision 2/4); R = 3 (e missed).
    # AP = (1/2 + 2/4) / 3 = 1/3.
    assert average_precision(RANKED, REL) == pytest.approx(1 / 3, abs=1e-12)
    # min_grade=2: hit b at rank 2 (precision 1/2), R = 2 -> 1/4.
    assert average_precision(RANKED, REL, min_grade=2) == pytest.approx(0.25, abs=1e-12)


def test_rank_with_ties_groups_equal_scores_in_input_order() -> None:
    groups = rank_with_ties(["a", "b", "c", "d", "e"], [0.1, 0.5, 0.9, 0.5, 0.5])
    assert groups == [("c",), ("b", "d", "e"), ("a",)]
    with pytest.raises(ValueError):
        rank_with_ties(["a"], [0.1, 0.2])


def test_ties_hand_computed() -> None:
    # c ties with b at ranks 2-3; each order has probability 1/2.
    ranked = ["a", ("b", "c"), "d"]
    rel = {"c": 1}
    # RR: 1/2 or 1/3 -> 5/12. AP with R = 1 is the same expectation.
    assert mrr_at_k(ranked, rel, 10) == pytest.approx(5 / 12, abs=1e-12)
    assert average_precision(ranked, rel) == pytest.approx(5 / 12, abs=1e-12)
    # k=2 cuts the tie: c is in the top 2 with probability 1/2.
    assert recall_at_k(ranked, rel, 2) == pytest.approx(0.5, abs=1e-12)
    assert mrr_at_k(ranked, rel, 2) == pytest.approx(0.25, abs=1e-12)  # (1/2)*(1/2)
    # DCG@2 = mean gain of the tie (1/2) at rank 2 = 0.5/log2(3); IDCG = 1.
    assert ndcg_at_k(ranked, rel, 2) == pytest.approx(0.5 / math.log2(3), abs=1e-12)


def _brute_force(metric, groups: list[tuple[str, ...]], *args: object) -> float:
    """Mean of the strict metric over every order of every tied group."""
    values = [
        metric([rid for g in combo for rid in g], *args)
        for combo in itertools.product(*(itertools.permutations(g) for g in groups))
    ]
    return sum(values) / len(values)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7])
def test_tie_aware_metrics_equal_the_mean_over_all_orders(k: int) -> None:
    groups = [("x", "b"), ("c", "y", "e", "z"), ("d",), ("f", "g")]
    rel = {"b": 2, "c": 1, "e": 2, "g": 1, "missing": 1}
    for metric, extra in (
        (recall_at_k, (k,)),
        (recall_at_k, (k, 2)),
        (mrr_at_k, (k,)),
        (mrr_at_k, (k, 2)),
        (ndcg_at_k, (k,)),
    ):
        got = metric(groups, rel, *extra)
        assert got == pytest.approx(_brute_force(metric, groups, rel, *extra), abs=1e-12)
    for min_grade in (1, 2):
        got = average_precision(groups, rel, min_grade)
        want = _brute_force(average_precision, groups, rel, min_grade)
        assert got == pytest.approx(want, abs=1e-12)


def test_tie_breaking_order_cannot_change_the_score() -> None:
    rel = {"b": 1}
    first, second = [("b", "a")], [("a", "b")]
    assert ndcg_at_k(first, rel, 1) == ndcg_at_k(second, rel, 1) > 0
    # Without the tie marked, the strict order counts.
    assert ndcg_at_k(["b", "a"], rel, 1) == 1.0
    assert ndcg_at_k(["a", "b"], rel, 1) == 0.0


def test_repeats_earn_nothing() -> None:
    rel = {"b": 1, "d": 1}
    # The second b holds rank 2 but adds nothing: recall 1/2, AP = (1/1)/2.
    assert recall_at_k(["b", "b"], rel, 2) == pytest.approx(0.5)
    assert average_precision(["b", "b", "d"], rel) == pytest.approx((1 + 2 / 3) / 2)
    assert recall_at_k(["b", "b", "b", "d"], rel, 4) <= 1.0


def test_empty_results_score_zero() -> None:
    for value in (
        recall_at_k([], REL, 5),
        mrr_at_k([], REL, 5),
        ndcg_at_k([], REL, 5),
        average_precision([], REL),
    ):
        assert value == 0.0


def test_nothing_relevant_scores_zero_and_is_unanswerable() -> None:
    # The judged items are not in the index at all: the query measures the corpus.
    rel = {"gone1": 2, "gone2": 1}
    indexed = {"a", "b", "c"}
    assert not is_answerable(rel, indexed)
    assert is_answerable({"gone1": 2, "b": 1}, indexed)
    assert not is_answerable({"gone1": 2, "b": 1}, indexed, min_grade=2)
    for value in (
        recall_at_k(["a", "b"], rel, 2),
        ndcg_at_k(["a", "b"], rel, 2),
        average_precision(["a", "b"], rel),
        recall_at_k(["a", "b"], {}, 2),
        ndcg_at_k(["a"], {"a": 0}, 2),
        mrr_at_k(["a"], {}, 2),
    ):
        assert value == 0.0


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError):
        recall_at_k(RANKED, REL, 0)


def test_percentile_linear_interpolation() -> None:
    assert percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)
    # h = (5-1)*0.95 = 3.8 -> 40 + 0.8*(50-40) = 48
    assert percentile([10, 20, 30, 40, 50], 95) == pytest.approx(48.0)
    assert percentile([7.0], 95) == 7.0
    rng = np.random.default_rng(0)
    values = rng.exponential(20.0, size=101).tolist()
    for p in (0, 5, 50, 95, 99, 100):
        assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)), abs=1e-9)
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarise_means_per_key() -> None:
    rows = [{"recall@10": 1.0, "mrr@10": 0.5}, {"recall@10": 0.0, "mrr@10": 1.0}, {"ap": 0.3}]
    assert summarise(rows) == pytest.approx({"recall@10": 0.5, "mrr@10": 0.75, "ap": 0.3})
    assert summarise([]) == {}


def test_metrics_import_is_light() -> None:
    code = "import sys, mmsearch_cli.evaluation.metrics; print('numpy' in sys.modules)"
    root = ROOT
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "False"
