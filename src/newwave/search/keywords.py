"""Keyword matching: Okapi BM25 over short texts (a track's tags, its lyrics).

The combined search matches the query's words against each track's tags (title,
artist, album, genre, comment, decade); the evaluation's keyword baseline ranks with it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class BM25:
    """Okapi BM25 (k1 = 1.5, b = 0.75) with the non-negative IDF
    ``log(1 + (N - df + 0.5) / (df + 0.5))``."""

    def __init__(self, documents: Sequence[str], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.docs = [Counter(tokenize(d)) for d in documents]
        self.lengths = np.array([sum(d.values()) for d in self.docs], dtype=np.float64)
        self.average = float(self.lengths.mean()) if len(self.docs) else 0.0
        frequency: Counter[str] = Counter()
        for doc in self.docs:
            frequency.update(doc.keys())
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - df + 0.5) / (df + 0.5)) for t, df in frequency.items()}

    def scores(self, query: str) -> np.ndarray:
        result = np.zeros(len(self.docs))
        norm = self.k1 * (1 - self.b + self.b * self.lengths / max(self.average, 1e-9))
        for term in set(tokenize(query)):
            if term not in self.idf:
                continue
            tf = np.array([doc.get(term, 0) for doc in self.docs], dtype=np.float64)
            result += self.idf[term] * tf * (self.k1 + 1) / (tf + norm)
        return result

    def rank(self, query: str, seed: int = 0) -> list[int]:
        """Document indices, best first; ties (often: no term matches at all) are broken
        by a seeded shuffle, so document order never leaks into the ranking."""
        tiebreak = np.random.default_rng(seed).permutation(len(self.docs))
        return np.lexsort((tiebreak, -self.scores(query))).tolist()
