"""Retrieval metrics against values worked out by hand (the derivation is in each comment).

The cases are chosen so that the usual slips give a different number: more relevant items
than K, rankings shorter than K, relevant items past K, no relevant item at all.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from newwave.eval.metrics import (PER_QUERY_METRICS, average_precision_at, bootstrap_ci,
                                  evaluate, first_relevant_rank, hit_rate_at, ndcg_at,
                                  precision_at, recall_fraction_at, reciprocal_rank)

# More relevant items (5) than K (3), and a ranking longer than K.
LONG = ["a", "b", "c", "d", "e", "f", "g"]
MANY = {"a", "c", "e", "g", "h"}  # h is never retrieved


def test_average_precision_divides_by_min_of_relevant_and_k() -> None:
    # Top 3: a (hit, P@1 = 1), b, c (hit, P@3 = 2/3).
    # AP@3 = (1 + 2/3) / min(5, 3) = (5/3) / 3 = 5/9   (÷|relevant| would give 1/3)
    assert average_precision_at(LONG, MANY, 3) == pytest.approx(5 / 9)
    # AP@7: hits at 1, 3, 5, 7 -> P = 1, 2/3, 3/5, 4/7; divided by min(5, 7) = 5
    assert average_precision_at(LONG, MANY, 7) == pytest.approx((1 + 2 / 3 + 3 / 5 + 4 / 7) / 5)
    # One relevant item at rank 2 of a 2-long ranking, K = 5: P@2 / min(1, 5) = 1/2
    assert average_precision_at(["x", "a"], {"a"}, 5) == pytest.approx(0.5)
    assert average_precision_at(LONG, set(), 3) == 0.0


def test_precision_divides_by_k_even_when_the_ranking_is_shorter() -> None:
    # Two items returned, one relevant, K = 5: the 3 empty slots are misses -> 1/5, not 1/2.
    assert precision_at(["x", "a"], {"a"}, 5) == pytest.approx(1 / 5)
    # Top 3 of LONG: a, b, c -> 2 relevant -> 2/3.
    assert precision_at(LONG, MANY, 3) == pytest.approx(2 / 3)
    assert precision_at(LONG, MANY, 1) == 1.0


def test_ndcg_ideal_is_cut_at_k() -> None:
    # DCG@3 = 1/log2(2) + 1/log2(4) = 1 + 1/2 (hits at ranks 1 and 3).
    # IDCG@3 = min(5, 3) = 3 ideal hits = 1 + 1/log2(3) + 1/2 (not all 5 relevant items).
    assert ndcg_at(LONG, MANY, 3) == pytest.approx(1.5 / (1 + 1 / math.log2(3) + 0.5))
    # One relevant item at rank 2: DCG = 1/log2(3); IDCG = 1/log2(2) = 1.
    assert ndcg_at(["x", "a"], {"a"}, 5) == pytest.approx(1 / math.log2(3))
    # A perfect ranking scores 1; nothing relevant returned scores 0.
    assert ndcg_at(["a", "c", "e"], MANY, 3) == pytest.approx(1.0)
    assert ndcg_at(LONG, {"z"}, 3) == 0.0 and ndcg_at(LONG, set(), 3) == 0.0


def test_rank_based_metrics() -> None:
    assert first_relevant_rank(LONG, {"c", "g"}) == 3
    assert first_relevant_rank(LONG, {"z"}) is None
    assert reciprocal_rank(LONG, {"c", "g"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(LONG, {"a"}) == 1.0 and reciprocal_rank(LONG, {"z"}) == 0.0
    # HitRate@K: any relevant item in the top K.
    assert [hit_rate_at(LONG, {"c"}, k) for k in (1, 2, 3, 10)] == [0.0, 0.0, 1.0, 1.0]
    # RecallFraction@K: |top K ∩ relevant| / |relevant| = {a} / 5, {a, c} / 5, {a, c, e, g} / 5
    assert recall_fraction_at(LONG, MANY, 1) == pytest.approx(1 / 5)
    assert recall_fraction_at(LONG, MANY, 3) == pytest.approx(2 / 5)
    assert recall_fraction_at(LONG, MANY, 10) == pytest.approx(4 / 5)
    assert recall_fraction_at(LONG, set(), 3) == 0.0


def test_evaluate_reports_every_metric_at_its_k() -> None:
    # Query 1: 12 items, relevant {r6, r11} at ranks 6 and 11. Query 2: relevant at rank 1.
    first = [f"n{i}" for i in range(1, 13)]
    first[5], first[10] = "r6", "r11"
    rankings, relevants = [first, ["q", "x"]], [{"r6", "r11"}, {"q"}]
    metrics, ranks = evaluate(rankings, relevants)
    assert ranks == [6, 1]
    mean = {name: estimate.mean for name, estimate in metrics.items()}
    assert mean["MRR"] == pytest.approx((1 / 6 + 1) / 2)
    assert (mean["HitRate@1"], mean["HitRate@5"], mean["HitRate@10"]) == (0.5, 0.5, 1.0)
    # Query 1: @10 holds r6 only -> 1/2 of its relevant items; query 2: 1.
    assert mean["RecallFraction@10"] == pytest.approx((0.5 + 1) / 2)
    assert mean["RecallFraction@5"] == pytest.approx((0 + 1) / 2)
    assert mean["RecallFraction@1"] == pytest.approx(0.5)
    # Precision@K divides by K for both: (0 + 1/1) / 2; (0 + 1/5) / 2; (1/10 + 1/10) / 2
    assert mean["Precision@1"] == pytest.approx(0.5)
    assert mean["Precision@5"] == pytest.approx(0.1)
    assert mean["Precision@10"] == pytest.approx(0.1)
    # mAP@10: query 1 = P@6 / min(2, 10) = (1/6) / 2; query 2 = 1.
    assert mean["mAP@10"] == pytest.approx((1 / 12 + 1) / 2)
    # nDCG@10: query 1 = (1/log2(7)) / (1 + 1/log2(3)); query 2 = 1.
    assert mean["nDCG@10"] == pytest.approx((1 / math.log2(7) / (1 + 1 / math.log2(3)) + 1) / 2)
    assert (mean["MeanRank"], mean["MedianRank"]) == (3.5, 3.5)
    assert set(metrics) == {*PER_QUERY_METRICS, "MeanRank", "MedianRank"}
    with pytest.raises(ValueError, match="^2 rankings for 1 queries$"):
        evaluate(rankings, relevants[:1])


def test_bootstrap_interval() -> None:
    values = [0.0] * 50 + [1.0] * 50
    estimate = bootstrap_ci(values)
    assert estimate.mean == 0.5
    # The mean of 100 fair coin flips: standard error 0.05, so the 95% interval is about
    # 0.5 ± 1.96 * 0.05 = [0.40, 0.60]; resampling noise stays well inside ±0.03 of it.
    assert 0.37 < estimate.low < 0.43 and 0.57 < estimate.high < 0.63
    assert bootstrap_ci(values) == estimate  # fixed seed: reproducible
    assert bootstrap_ci(values, seed=1) != estimate
    # 50%: ±0.674 SE = [0.466, 0.534] (a 1/3 tail instead of 1/2 would be ±0.97 SE)
    narrow = bootstrap_ci(values, confidence=0.5)
    assert 0.46 < narrow.low < 0.48 and 0.52 < narrow.high < 0.545
    # Every value can be drawn: resampling [10, 0, 0, 0] reaches means above 0 (the
    # chance that none of 1,000 resamples holds the 10 is 0.75^4000).
    assert bootstrap_ci([10, 0, 0, 0]).high > 0
    assert vars(bootstrap_ci([0.7])) == {"mean": 0.7, "low": 0.7, "high": 0.7}  # not NaN
    median = bootstrap_ci([1, 2, 3, 4, 100], median=True)
    assert median.mean == 3 and median.high <= 100 and median.low >= 1
    assert bootstrap_ci([1, 2, 3, 4, 100]).mean == 22
    assert all(math.isnan(v) for v in vars(bootstrap_ci([])).values())
    few = bootstrap_ci(values, resamples=10)
    assert few != estimate and np.isfinite(few.low)
