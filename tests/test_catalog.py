from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from newwave.catalog import SCHEMA_VERSION, Catalog, CoverImage, Lyrics, SchemaError, TrackRecord, connect


def record(path: str, **overrides: object) -> TrackRecord:
    values: dict = dict(path=path, root_id=None, content_hash="h-" + path, size=1, mtime_ns=1,
                        format="flac", title=Path(path).stem)
    values.update(overrides)
    return TrackRecord(**values)


def test_new_catalog_is_migrated_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.sqlite") as catalog:
        conn = connect(catalog.path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"tracks", "lyrics", "covers", "scan_errors", "feedback", "jobs",
                "library_roots"} <= tables


def test_reopening_keeps_data_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with Catalog(path) as catalog:
        catalog.save_track(record("/m/a.flac"), None)
    with Catalog(path) as catalog:
        assert [t.title for t in catalog.tracks()] == ["a"]
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaError, match="newer than this NewWave supports"):
        Catalog(path)


def test_save_update_keeps_identity_and_replaces_lyrics(catalog: Catalog) -> None:
    track_id = catalog.save_track(record("/m/a.flac"), Lyrics("txt", "old words"))
    same = catalog.save_track(record("/m/a.flac", title="Renamed", artist="X"),
                              Lyrics("embedded", "new words"), track_id)
    assert same == track_id
    track = catalog.track(track_id)
    assert track is not None and (track.title, track.artist) == ("Renamed", "X")
    assert catalog.lyrics(track_id) == Lyrics("embedded", "new words")
    catalog.save_track(record("/m/a.flac"), None, track_id)
    assert catalog.lyrics(track_id) is None


def test_foreign_keys_cascade_lyrics_and_protect_feedback(catalog: Catalog) -> None:
    track_id = catalog.save_track(record("/m/a.flac"), Lyrics("txt", "words"))
    with catalog.transaction() as conn:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO feedback (track_id, kind, created_at) VALUES (999, 'like', 0)")
    with catalog.transaction() as conn:
        conn.execute("DELETE FROM tracks WHERE id = ?", (track_id,))
    assert catalog.lyrics(track_id) is None


def test_failed_transaction_rolls_back(catalog: Catalog) -> None:
    with pytest.raises(RuntimeError):
        with catalog.transaction() as conn:
            conn.execute("INSERT INTO library_roots (path, added_at) VALUES ('/x', 0)")
            raise RuntimeError("boom")
    assert catalog.roots() == []


def test_covers_are_stored_once_by_content(catalog: Catalog) -> None:
    cover = CoverImage(sha256="abc", source="embedded", mime="image/png", width=2, height=2,
                       data=b"png")
    assert catalog.add_cover(cover) == catalog.add_cover(cover)
    assert catalog.cover(catalog.add_cover(cover)) == cover
    with pytest.raises(sqlite3.IntegrityError):  # folder art must name its file
        catalog.add_cover(CoverImage(sha256="def", source="folder", mime="image/png"))


def test_jobs_record_progress_and_outcome(catalog: Catalog) -> None:
    job_id = catalog.start_job("scan", {"root": "/m"})
    catalog.update_job(job_id, done=3, total=10, message="a.flac")
    job = catalog.job(job_id)
    assert job is not None and (job.status, job.done, job.total) == ("running", 3, 10)
    catalog.finish_job(job_id, "done", message="all good")
    job = catalog.job(job_id)
    assert job is not None and job.status == "done" and job.finished_at is not None
    assert job.params == {"root": "/m"} and job.message == "all good"


def test_readers_see_committed_data_while_a_writer_holds_a_transaction(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    writer = Catalog(path)
    writer.save_track(record("/m/first.flac"), None)
    reader = Catalog(path)
    in_transaction, release = threading.Event(), threading.Event()

    def write() -> None:
        with writer.transaction() as conn:
            conn.execute("UPDATE tracks SET title = 'changing'")
            in_transaction.set()
            release.wait(5)

    thread = threading.Thread(target=write)
    thread.start()
    assert in_transaction.wait(5)
    assert [t.title for t in reader.tracks()] == ["first"]  # not blocked, not dirty
    release.set()
    thread.join()
    assert [t.title for t in reader.tracks()] == ["changing"]
    reader.close()
    writer.close()


def test_stats_count_present_tracks(catalog: Catalog) -> None:
    a = catalog.save_track(record("/m/a.flac", artist="A", album="X", duration=60.0),
                           Lyrics("txt", "w"))
    catalog.save_track(record("/m/b.mp3", format="mp3", artist="B", album="X", duration=30.0), None)
    catalog.mark_missing([a])
    stats = catalog.stats()
    assert (stats.tracks, stats.missing, stats.with_lyrics) == (1, 1, 0)
    assert stats.formats == {"mp3": 1} and stats.total_duration == 30.0
