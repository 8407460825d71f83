"""Persisted FAISS indexes carry checksums: damaged files are noticed and rebuilt."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import faiss
import numpy as np
import pytest

from newwave.catalog import Catalog, TrackRecord, VectorSpace
from newwave.index.faiss_index import VectorIndex

DIM = 64
TRACKS = 2000


def fill(catalog: Catalog) -> VectorSpace:
    """TRACKS tracks with clustered unit vectors (so neighbours are well defined)."""
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((30, DIM))
    space = catalog.vector_space("audio", "synthetic", "v1", DIM)
    for i in range(TRACKS):
        track_id = catalog.save_track(TrackRecord(
            path=f"/music/{i}.flac", root_id=None, content_hash=f"h{i}", size=1, mtime_ns=1,
            format="flac", title=f"track {i}"), None)
        vector = centers[i % 30] + 0.4 * rng.standard_normal(DIM)
        catalog.put_vectors(space, track_id, f"h{i}", (vector / np.linalg.norm(vector)))
    return space


def queries() -> np.ndarray:
    rng = np.random.default_rng(11)
    q = rng.standard_normal((25, DIM)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def results(index: VectorIndex) -> list[tuple[list[int], list[float]]]:
    return [(ids.tolist(), scores.tolist()) for ids, scores in
            (index.search(q, 10) for q in queries())]


def overwrite_middle(path: Path, count: int = 4000) -> None:
    """Replace ``count`` bytes in the middle of ``path`` with float32 3.4e38 patterns."""
    data = bytearray(path.read_bytes())
    start = len(data) // 2 - count // 2
    data[start:start + count] = (b"\xff\xff\x7f\x7f" * (count // 4 + 1))[:count]
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("approximate", [False, True], ids=["flat", "ivf"])
def test_corrupted_index_bytes_are_detected_and_rebuilt_from_the_catalog(
        catalog: Catalog, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        approximate: bool) -> None:
    space = fill(catalog)
    folder = tmp_path / "indexes"
    threshold = 1000 if approximate else 50_000
    index = VectorIndex(space, folder, approximate_from=threshold)
    index.sync(catalog)
    assert index.approximate == approximate and index.size == TRACKS
    before = results(index)
    overwrite_middle(index.index_path)
    # FAISS itself loads the damaged file without complaint: only the checksum tells.
    assert faiss.read_index(str(index.index_path)).ntotal == TRACKS

    with caplog.at_level(logging.WARNING, logger="newwave.index"):
        reloaded = VectorIndex(space, folder, approximate_from=threshold)
    assert reloaded.size == 0  # the damaged copy is never searched
    (warning,) = [r for r in caplog.records if r.name == "newwave.index"]
    assert warning.levelno == logging.WARNING
    assert f"{index.index_path} is corrupt" in warning.getMessage()
    assert "rebuilds the index from the catalog" in warning.getMessage()

    report = reloaded.sync(catalog)
    assert report.changed and reloaded.size == TRACKS
    assert results(reloaded) == before
    # The rebuilt files verify on the next start.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="newwave.index"):
        again = VectorIndex(space, folder, approximate_from=threshold)
    assert not caplog.records and again.size == TRACKS and results(again) == before
    assert not again.sync(catalog).changed


def test_a_corrupted_manifest_is_detected_and_rebuilt(catalog: Catalog, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    space = fill(catalog)
    index = VectorIndex(space, tmp_path / "indexes")
    index.sync(catalog)
    before = results(index)
    overwrite_middle(index.manifest_path)
    with caplog.at_level(logging.WARNING, logger="newwave.index"):
        reloaded = VectorIndex(space, tmp_path / "indexes")
    assert reloaded.size == 0
    assert f"{index.manifest_path} is corrupt" in caplog.text
    reloaded.sync(catalog)
    assert results(reloaded) == before


def test_an_index_without_checksums_is_rebuilt_quietly(catalog: Catalog, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """Indexes written before checksums existed are rebuilt once, without a warning."""
    space = fill(catalog)
    index = VectorIndex(space, tmp_path / "indexes")
    index.sync(catalog)
    before = results(index)
    meta = json.loads(index.meta_path.read_text())
    del meta["checksums"]
    index.meta_path.write_text(json.dumps(meta))
    with caplog.at_level(logging.INFO, logger="newwave.index"):
        reloaded = VectorIndex(space, tmp_path / "indexes")
    assert reloaded.size == 0
    assert [r.levelno for r in caplog.records if r.name == "newwave.index"] == [logging.INFO]
    assert reloaded.sync(catalog).changed and results(reloaded) == before
    assert "checksums" in json.loads(index.meta_path.read_text())


def test_a_crash_between_the_renames_reads_as_a_mismatch(catalog: Catalog,
                                                         tmp_path: Path) -> None:
    """An index file newer than its meta (a save that died before renaming the meta) is
    not trusted: it might not match the manifest."""
    space = fill(catalog)
    index = VectorIndex(space, tmp_path / "indexes")
    index.sync(catalog)
    old_meta = index.meta_path.read_text()
    with catalog.transaction() as conn:
        conn.execute("DELETE FROM vectors WHERE track_id <= 50")
    index.sync(catalog)
    index.meta_path.write_text(old_meta)  # as if the last rename never happened
    reloaded = VectorIndex(space, tmp_path / "indexes")
    assert reloaded.size == 0
    reloaded.sync(catalog)
    assert reloaded.size == TRACKS - 50 and results(reloaded) == results(index)
