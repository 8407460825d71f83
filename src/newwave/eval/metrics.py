"""Retrieval metrics with exact definitions (see docs/evaluation.md).

For one query: ``ranking`` is the full ranked list of item ids the system returned
(best first) and ``relevant`` the set of item ids that answer it (one or several).
``rank`` is the 1-based position of the first relevant item; when no relevant item was
returned it is ``len(ranking) + 1`` for mean/median rank and contributes 0 to every
other metric.

- RR (reciprocal rank): ``1 / rank`` of the first relevant item, 0 when none. MRR is its mean.
- HitRate@K ("Recall@K" in music-retrieval papers, e.g. CLAP/CLaMP on Song Describer):
  1 when any relevant item is in the top K, else 0.
- RecallFraction@K: share of the query's relevant items that are in the top K.
- Precision@K: relevant items in the top K, divided by K.
- AP@K: ``sum_{i<=K} Precision@i * rel_i / min(|relevant|, K)``; mAP@10 is its mean at K=10.
- nDCG@K: binary gains, ``DCG = sum_{i<=K} rel_i / log2(i + 1)``, divided by the DCG of
  an ideal ranking of the relevant items.
Every figure is a mean over queries; its 95% confidence interval comes from a
percentile bootstrap over queries (1,000 resamples, fixed seed).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

Item = Hashable


def first_relevant_rank(ranking: Sequence[Item], relevant: set[Item]) -> int | None:
    return next((i for i, item in enumerate(ranking, start=1) if item in relevant), None)


def reciprocal_rank(ranking: Sequence[Item], relevant: set[Item]) -> float:
    rank = first_relevant_rank(ranking, relevant)
    return 1.0 / rank if rank else 0.0


def hit_rate_at(ranking: Sequence[Item], relevant: set[Item], k: int) -> float:
    return 1.0 if any(item in relevant for item in ranking[:k]) else 0.0


def recall_fraction_at(ranking: Sequence[Item], relevant: set[Item], k: int) -> float:
    return len(set(ranking[:k]) & relevant) / len(relevant) if relevant else 0.0


def precision_at(ranking: Sequence[Item], relevant: set[Item], k: int) -> float:
    return sum(1 for item in ranking[:k] if item in relevant) / k


def average_precision_at(ranking: Sequence[Item], relevant: set[Item], k: int) -> float:
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for i, item in enumerate(ranking[:k], start=1):
        if item in relevant:
            hits += 1
            total += hits / i
    return total / min(len(relevant), k)


def ndcg_at(ranking: Sequence[Item], relevant: set[Item], k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 1) for i, item in enumerate(ranking[:k], start=1)
              if item in relevant)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal if ideal else 0.0


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float  # 95% bootstrap interval
    high: float


def bootstrap_ci(values: Sequence[float], *, median: bool = False, resamples: int = 1000,
                 seed: int = 0, confidence: float = 0.95) -> Estimate:
    """The mean (or median) of ``values`` with a percentile-bootstrap interval."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    statistic = np.median if median else np.mean
    rng = np.random.default_rng(seed)
    samples = statistic(data[rng.integers(0, data.size, (resamples, data.size))], axis=1)
    tail = (1 - confidence) / 2 * 100
    return Estimate(float(statistic(data)), float(np.percentile(samples, tail)),
                    float(np.percentile(samples, 100 - tail)))


PER_QUERY_METRICS = {
    "MRR": reciprocal_rank,
    **{f"HitRate@{k}": (lambda r, rel, k=k: hit_rate_at(r, rel, k)) for k in (1, 5, 10)},
    **{f"RecallFraction@{k}": (lambda r, rel, k=k: recall_fraction_at(r, rel, k))
       for k in (1, 5, 10)},
    **{f"Precision@{k}": (lambda r, rel, k=k: precision_at(r, rel, k)) for k in (1, 5, 10)},
    "mAP@10": lambda r, rel: average_precision_at(r, rel, 10),
    "nDCG@10": lambda r, rel: ndcg_at(r, rel, 10),
}


def evaluate(rankings: Sequence[Sequence[Item]], relevants: Sequence[set[Item]], *,
             items: int | None = None) -> tuple[dict[str, Estimate], list[int]]:
    """Every metric (mean with 95% CI) over the queries, and each query's first
    relevant rank (``len(ranking) + 1`` when none was returned; ``items + 1`` when the
    collection's size is given, so that an unanswered query ranks last, not first)."""
    if len(rankings) != len(relevants):
        raise ValueError(f"{len(rankings)} rankings for {len(relevants)} queries")
    metrics = {name: bootstrap_ci([fn(r, rel) for r, rel in zip(rankings, relevants)])
               for name, fn in PER_QUERY_METRICS.items()}
    ranks = [first_relevant_rank(r, rel) or max(len(r), items or 0) + 1
             for r, rel in zip(rankings, relevants)]
    metrics["MeanRank"] = bootstrap_ci(ranks)
    metrics["MedianRank"] = bootstrap_ci(ranks, median=True)
    return metrics, ranks
