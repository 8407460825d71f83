"""The index set: one FAISS index per active vector space, owned in one place.

It resolves the active models' vector spaces in the catalog once (finding a space may
insert a row: a search must not take the catalog's write lock on every query), loads
each space's persisted index on first use and brings it in line with the catalog
(repairing drift a crash left), and guards every index with one lock, because the API
syncs from a background job while requests search.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path

import numpy as np

from newwave.catalog import Catalog, StoredVectors, VectorKind, VectorSpace
from newwave.index.faiss_index import DEFAULT_APPROXIMATE_FROM, SyncReport, VectorIndex
from newwave.models.base import ModelInfo, l2_normalize

@dataclass(frozen=True)
class TrackMatrix:
    track_ids: np.ndarray  # [n] ascending
    matrix: np.ndarray  # [n, dim] one row per track


KINDS: tuple[VectorKind, ...] = ("audio-text", "audio", "lyrics")
SpaceInfo = Callable[[VectorKind], ModelInfo]


class IndexSet:
    def __init__(self, catalog: Catalog, folder: Path, space_info: SpaceInfo, *,
                 approximate_from: int = DEFAULT_APPROXIMATE_FROM) -> None:
        self.catalog = catalog
        self.folder = folder
        self.space_info = space_info  # the active model's identity for each kind
        self.approximate_from = approximate_from
        self._spaces: dict[VectorKind, VectorSpace] = {}
        self._indexes: dict[VectorKind, VectorIndex] = {}
        self._matrices: dict[VectorKind, TrackMatrix] = {}  # pooled vectors, until a sync
        self.generation = 0  # counts syncs: what depends on the library rebuilds after one
        self._lock = threading.RLock()

    def space(self, kind: VectorKind) -> VectorSpace:
        """The active model's space of ``kind`` in the catalog."""
        with self._lock:
            if kind not in self._spaces:
                info = self.space_info(kind)
                self._spaces[kind] = self.catalog.vector_space(kind, info.name, info.version,
                                                               info.dim)
            return self._spaces[kind]

    def index(self, kind: VectorKind) -> VectorIndex:
        """The index of ``kind``: loaded from disk and synced with the catalog on first use."""
        with self._lock:
            if kind not in self._indexes:
                index = VectorIndex(self.space(kind), self.folder,
                                    approximate_from=self.approximate_from)
                index.sync(self.catalog)
                self._indexes[kind] = index
            return self._indexes[kind]

    def sync(self) -> dict[VectorKind, SyncReport]:
        """Bring every index in line with the catalog (after embedding, or at start-up
        to repair drift left by a crash)."""
        with self._lock:
            reports = {kind: self.index(kind).sync(self.catalog) for kind in KINDS}
            self._matrices.clear()
            self.generation += 1
            return reports

    def sizes(self) -> dict[VectorKind, int]:
        with self._lock:
            return {kind: self.index(kind).size for kind in KINDS}

    def search(self, kind: VectorKind, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(vector ids, scores) of the ``k`` best vectors of ``kind``, best first."""
        with self._lock:
            return self.index(kind).search(query, k)

    def size(self, kind: VectorKind) -> int:
        return self.index(kind).size

    def track_ids(self, kind: VectorKind) -> frozenset[int]:
        """The tracks that have vectors of ``kind``."""
        with self._lock:
            return self.index(kind).track_ids

    def track_vectors(self, kind: VectorKind, track_ids: list[int]) -> dict[int, np.ndarray]:
        """One unit vector per track (the mean of its windows), read from the catalog."""
        stored = self.catalog.vectors(self.space(kind), track_ids)
        pooled = {}
        for track_id in np.unique(stored.track_ids):
            pooled[int(track_id)] = l2_normalize(stored.matrix[stored.track_ids == track_id].mean(0))
        return pooled

    def matrix(self, kind: VectorKind) -> TrackMatrix:
        """Every track's pooled vector of ``kind`` (kept until the next sync): exact
        scoring of a whole small-dimensional space (musicnn's 100 tags) costs less than
        a round of index searches, and calibration needs the whole library anyway."""
        with self._lock:
            if kind not in self._matrices:
                stored = self.catalog.vectors(self.space(kind))
                track_ids, starts = np.unique(stored.track_ids, return_index=True)
                if len(track_ids) == len(stored.track_ids):  # one vector per track
                    matrix = stored.matrix
                else:
                    sums = np.add.reduceat(stored.matrix, starts, axis=0) if len(starts) else \
                        stored.matrix
                    matrix = l2_normalize(sums)
                self._matrices[kind] = TrackMatrix(track_ids.astype(np.int64), matrix)
            return self._matrices[kind]

    def window_vectors(self, kind: VectorKind, track_ids: list[int]) -> StoredVectors:
        """Every stored vector (window) of the tracks, as the catalog holds them."""
        return self.catalog.vectors(self.space(kind), track_ids)
