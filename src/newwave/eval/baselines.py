"""The floors every figure is shown beside: random ranking, and BM25 keyword search
over what a music app without NewWave has (tags, file names, lyrics; see
``newwave.search.keywords``)."""

from __future__ import annotations

import numpy as np


def random_ranking(count: int, seed: int) -> list[int]:
    return np.random.default_rng(seed).permutation(count).tolist()
