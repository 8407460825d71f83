"""A FAISS index for one vector space, persisted beside the catalog.

The catalog is the source of truth; the index is a derived, persistent copy that
``sync`` brings in line with it (adding, replacing and removing only what differs), so
a crash between a catalog write and an index write is repaired on the next sync.

Ids: FAISS holds int64 ids; a vector's id packs its track id and window number
(``track_id << CHUNK_BITS | chunk``), so long lyrics keep one vector per window.
Search is exact (flat inner product) below ``approximate_from`` vectors and IVF-flat
above it, with ``nprobe`` set for high recall (measured by benchmarks/search.py).

Integrity: FAISS loads a damaged file without complaint and then returns wrong tracks
with absurd scores, so the meta file records a BLAKE2b checksum of the index and the
manifest; a mismatch on load is logged and the index starts empty, so the next sync
rebuilds it from the catalog.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from newwave.catalog import Catalog, VectorSpace

log = logging.getLogger("newwave.index")

CHUNK_BITS = 12  # up to 4096 windows per track
DEFAULT_APPROXIMATE_FROM = 50_000


def vector_ids(track_ids: np.ndarray, chunks: np.ndarray) -> np.ndarray:
    return (np.asarray(track_ids, dtype=np.int64) << CHUNK_BITS) | np.asarray(chunks, dtype=np.int64)


def track_ids_of(ids: np.ndarray) -> np.ndarray:
    return np.asarray(ids, dtype=np.int64) >> CHUNK_BITS


@dataclass(frozen=True)
class SyncReport:
    added: int
    removed: int
    rebuilt: bool

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.rebuilt)


class VectorIndex:
    """Inner-product search over one space's vectors, keyed by (track, chunk)."""

    def __init__(self, space: VectorSpace, folder: Path, *,
                 approximate_from: int = DEFAULT_APPROXIMATE_FROM) -> None:
        self.space = space
        self.folder = folder
        self.approximate_from = approximate_from
        stem = f"{space.kind}-{space.id}"
        self.index_path = folder / f"{stem}.faiss"
        self.manifest_path = folder / f"{stem}.manifest.npz"
        self.meta_path = folder / f"{stem}.json"
        self.index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(space.dim))
        self.manifest: dict[int, str] = {}  # vector id -> source hash
        self._track_ids: frozenset[int] | None = None
        self._load()

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def track_ids(self) -> frozenset[int]:
        """The tracks that have at least one vector here."""
        if self._track_ids is None:
            self._track_ids = frozenset(i >> CHUNK_BITS for i in self.manifest)
        return self._track_ids

    @property
    def approximate(self) -> bool:
        return isinstance(faiss.downcast_index(self.index), faiss.IndexIVF)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(vector ids, scores) of the ``k`` best vectors for one query, best first."""
        k = min(k, self.size)
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores, ids = self.index.search(np.asarray(query, dtype=np.float32).reshape(1, -1), k)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def check(self, catalog: Catalog) -> tuple[int, int]:
        """(vectors to add or replace, vectors to remove) for the index to match the catalog."""
        wanted = self._wanted(catalog)
        return (sum(1 for i, h in wanted.items() if self.manifest.get(i) != h),
                sum(1 for i, h in self.manifest.items() if wanted.get(i) != h))

    def sync(self, catalog: Catalog) -> SyncReport:
        """Bring the index in line with the catalog and save it (atomically)."""
        wanted = self._wanted(catalog)
        stale = [i for i, h in self.manifest.items() if wanted.get(i) != h]
        fresh = [i for i, h in wanted.items() if self.manifest.get(i) != h]
        should_approximate = len(wanted) >= self.approximate_from
        if should_approximate != self.approximate or \
                (self.approximate and len(stale) + len(fresh) > 0.2 * max(len(wanted), 1)):
            self._rebuild(catalog, wanted, should_approximate)
            self._save()
            return SyncReport(added=len(wanted), removed=0, rebuilt=True)
        if stale:
            self.index.remove_ids(np.array(stale, dtype=np.int64))
            for vector_id in stale:
                del self.manifest[vector_id]
        if fresh:
            stored = catalog.vectors(self.space, track_ids={i >> CHUNK_BITS for i in fresh})
            ids = vector_ids(stored.track_ids, stored.chunks)
            chosen = np.isin(ids, np.array(fresh, dtype=np.int64))
            self.index.add_with_ids(stored.matrix[chosen], ids[chosen])
            self.manifest.update((int(i), wanted[int(i)]) for i in ids[chosen])
        if stale or fresh:
            self._save()
        return SyncReport(added=len(fresh), removed=len(stale), rebuilt=False)

    # -- building and persistence -------------------------------------------------------

    def _wanted(self, catalog: Catalog) -> dict[int, str]:
        return {(track << CHUNK_BITS) | chunk: source
                for (track, chunk), source in catalog.vector_manifest(self.space).items()}

    def _rebuild(self, catalog: Catalog, wanted: dict[int, str], approximate: bool) -> None:
        stored = catalog.vectors(self.space)
        ids = vector_ids(stored.track_ids, stored.chunks)
        self.index = build_index(stored.matrix, ids, approximate=approximate)
        self.manifest = {int(i): wanted[int(i)] for i in ids}

    def _load(self) -> None:
        if not (self.index_path.exists() and self.manifest_path.exists() and self.meta_path.exists()):
            return
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            if meta.get("space") != _space_meta(self.space):
                return  # written for another model: rebuilt by the next sync
            if not self._intact(meta):
                return
            index = faiss.read_index(str(self.index_path))
            with np.load(self.manifest_path) as saved:
                manifest = dict(zip(saved["ids"].tolist(), saved["hashes"].astype(str).tolist()))
        except (OSError, ValueError, KeyError, RuntimeError, AttributeError):
            return  # unreadable or torn files: start empty, the next sync rebuilds
        if len(manifest) == index.ntotal:
            self.index, self.manifest = index, manifest

    def _intact(self, meta: dict[str, object]) -> bool:
        """Whether the index and manifest files are the bytes ``_save`` wrote."""
        recorded = meta.get("checksums")
        if not isinstance(recorded, dict):
            log.info("%s has no checksums (written by an older NewWave); the next sync "
                     "rebuilds the index from the catalog", self.meta_path)
            return False
        for key, path in (("index", self.index_path), ("manifest", self.manifest_path)):
            if (found := file_checksum(path)) != recorded.get(key):
                if _read_json(self.meta_path) != meta:  # another process saved meanwhile
                    log.info("%s changed while loading; the next sync brings the index in "
                             "line with the catalog", self.meta_path)
                    return False
                log.warning("%s is corrupt (BLAKE2b %s, expected %s); ignoring it, the next "
                            "sync rebuilds the index from the catalog", path, found,
                            recorded.get(key))
                return False
        return True

    def _save(self) -> None:
        """Write each file beside its final name, then rename: readers never see half."""
        self._track_ids = None
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = [p.with_name(p.name + ".tmp") for p in
                     (self.index_path, self.manifest_path, self.meta_path)]
        faiss.write_index(self.index, str(temporary[0]))
        with open(temporary[1], "wb") as handle:
            np.savez(handle, ids=np.array(list(self.manifest), dtype=np.int64),
                     hashes=np.array(list(self.manifest.values()), dtype="S32"))
        # The meta file goes last and carries the others' checksums: a crash between the
        # renames below also reads as a mismatch, never as a half-new index.
        checksums = {"index": file_checksum(temporary[0]), "manifest": file_checksum(temporary[1])}
        temporary[2].write_text(json.dumps({"space": _space_meta(self.space), "size": self.size,
                                            "approximate": self.approximate,
                                            "checksums": checksums}), encoding="utf-8")
        for tmp, final in zip(temporary, (self.index_path, self.manifest_path, self.meta_path)):
            os.replace(tmp, final)


def build_index(matrix: np.ndarray, ids: np.ndarray, *, approximate: bool,
                nprobe: int | None = None) -> faiss.Index:
    """Flat inner product, or IVF-flat with ``sqrt(n)`` lists trained on a sample."""
    dim = matrix.shape[1]
    if not approximate:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        index.add_with_ids(matrix, ids)
        return index
    nlist = max(16, int(math.sqrt(len(matrix))))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = matrix[np.random.default_rng(0).permutation(len(matrix))[:64 * nlist]]
    index.train(sample)
    index.add_with_ids(matrix, ids)
    index.nprobe = nprobe or max(8, nlist // 16)
    return index


def file_checksum(path: Path) -> str:
    """BLAKE2b of every byte of ``path``, as hex."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, hashlib.blake2b).hexdigest()


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _space_meta(space: VectorSpace) -> dict[str, object]:
    return {"id": space.id, "kind": space.kind, "model": space.model, "version": space.version,
            "dim": space.dim}
