"""The catalog: every track, its lyrics and cover, scan errors and jobs, in SQLite.

The database runs in WAL mode so readers (search, the API) never block on a scan
that is writing, and writers take their lock up front (``BEGIN IMMEDIATE``) so two
writers queue instead of failing half-way.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from newwave.catalog.models import (
    CatalogStats,
    CoverImage,
    FeedbackKind,
    Job,
    JobStatus,
    Lyrics,
    ScanErrorRow,
    Track,
    TrackDescriptors,
    TrackFilter,
    TrackRecord,
    StoredVectors,
    VectorKind,
    VectorSpace,
    VectorSpaceMismatch,
    parse_key,
)
from newwave.catalog.schema import migrate

_RECORD_COLUMNS = [f.name for f in fields(TrackRecord)]
_IDS_PER_QUERY = 500  # well under SQLite's limit on bound variables
_TRACK_COLUMNS = [f.name for f in fields(Track)]
_DESCRIPTOR_COLUMNS = [f.name for f in fields(TrackDescriptors)]
# A track's descriptors count while they were measured from its current content.
_CURRENT_DESCRIPTORS = ("SELECT 1 FROM descriptors d WHERE d.track_id = tracks.id "
                        "AND d.source_hash = tracks.content_hash AND d.error IS NULL")


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) a catalog database with NewWave's pragmas."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


class Catalog:
    """Door to the SQLite catalog. Safe to share between threads (one lock per catalog)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        self._lock = threading.RLock()
        migrate(self._conn)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def _query_ids(self, sql: str, ids: Iterable[int], params: tuple[Any, ...] = ()
                   ) -> list[sqlite3.Row]:
        """``sql`` with its ``{ids}`` marker bound to ``ids``, run in batches under
        SQLite's limit on bound variables. Ids go in ascending order, so a query that
        orders by id stays ordered across batches."""
        ordered = sorted(set(ids))
        rows: list[sqlite3.Row] = []
        for start in range(0, len(ordered), _IDS_PER_QUERY):
            part = ordered[start:start + _IDS_PER_QUERY]
            rows += self._query(sql.replace("{ids}", ", ".join("?" * len(part))),
                                (*params, *part))
        return rows

    # -- library roots -------------------------------------------------------------

    def add_root(self, path: Path) -> int:
        with self.transaction() as conn:
            conn.execute("INSERT INTO library_roots (path, added_at) VALUES (?, ?) "
                         "ON CONFLICT(path) DO NOTHING",
                         (str(path), time.time()))
            return conn.execute("SELECT id FROM library_roots WHERE path = ?",
                                (str(path),)).fetchone()[0]

    def mark_root_scanned(self, root_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE library_roots SET last_scan_at = ? WHERE id = ?",
                         (time.time(), root_id))

    def roots(self) -> list[str]:
        return [row["path"] for row in self._query("SELECT path FROM library_roots ORDER BY path")]

    # -- tracks --------------------------------------------------------------------

    def track(self, track_id: int) -> Track | None:
        rows = self._query(f"SELECT {', '.join(_TRACK_COLUMNS)} FROM tracks WHERE id = ?",
                           (track_id,))
        return _track(rows[0]) if rows else None

    def tracks(self, *, include_missing: bool = False, limit: int | None = None,
               offset: int = 0) -> list[Track]:
        where = "" if include_missing else "WHERE missing_since IS NULL"
        sql = (f"SELECT {', '.join(_TRACK_COLUMNS)} FROM tracks {where} "
               "ORDER BY artist COLLATE NOCASE, album COLLATE NOCASE, disc_number, "
               "track_number, title COLLATE NOCASE, id LIMIT ? OFFSET ?")
        return [_track(r) for r in self._query(sql, (-1 if limit is None else limit, offset))]

    def find_tracks(self, title_words: str) -> list[Track]:
        """Present tracks whose title contains ``title_words`` (case-insensitive)."""
        rows = self._query(f"SELECT {', '.join(_TRACK_COLUMNS)} FROM tracks "
                           "WHERE missing_since IS NULL AND title LIKE ? ESCAPE '!' ORDER BY id",
                           (_contains_pattern(title_words),))
        return [_track(r) for r in rows]

    def tracks_by_id(self, track_ids: Iterable[int]) -> dict[int, Track]:
        rows = self._query_ids(f"SELECT {', '.join(_TRACK_COLUMNS)} FROM tracks "
                               "WHERE id IN ({ids})", track_ids)
        return {row["id"]: _track(row) for row in rows}

    def filter_track_ids(self, filters: TrackFilter) -> set[int]:
        """Ids of present tracks that pass every set condition of ``filters``."""
        clauses, params = ["missing_since IS NULL"], []
        for value, columns in ((filters.artist, ("artist", "album_artist")),
                               (filters.album, ("album",)), (filters.genre, ("genre",))):
            if value:
                matches = [f"coalesce({column}, '') LIKE ? ESCAPE '!'" for column in columns]
                clauses.append(f"({' OR '.join(matches)})")
                params += [_contains_pattern(value)] * len(columns)
        for clause, value in (("year >= ?", filters.year_min), ("year <= ?", filters.year_max),
                              ("duration >= ?", filters.min_duration),
                              ("duration <= ?", filters.max_duration)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        if filters.has_lyrics is not None:
            clauses.append(("" if filters.has_lyrics else "NOT ")
                           + "EXISTS (SELECT 1 FROM lyrics l WHERE l.track_id = tracks.id)")
        # Descriptor conditions: a track without (current) descriptors passes none of them.
        for clause, value in (("d.bpm >= ?", filters.bpm_min), ("d.bpm <= ?", filters.bpm_max)):
            if value is not None:
                clauses.append(f"EXISTS ({_CURRENT_DESCRIPTORS} AND {clause})")
                params.append(value)
        if filters.key:
            tonic, mode = parse_key(filters.key)
            clauses.append(f"EXISTS ({_CURRENT_DESCRIPTORS} AND d.key = ? "
                           "AND (? IS NULL OR d.mode = ?))")
            params += [tonic, mode, mode]
        rows = self._query(f"SELECT id FROM tracks WHERE {' AND '.join(clauses)}", params)
        return {r[0] for r in rows}

    def tracks_under(self, root: Path) -> dict[str, Track]:
        """Every track (missing ones included) whose file lies under ``root``, by path."""
        prefix = str(root).rstrip("/") + "/"
        rows = self._query(
            f"SELECT {', '.join(_TRACK_COLUMNS)} FROM tracks "
            "WHERE substr(path, 1, ?) = ?", (len(prefix), prefix))
        return {row["path"]: _track(row) for row in rows}

    def tracks_with_hash(self, content_hash: str) -> list[Track]:
        rows = self._query(f"SELECT {', '.join(_TRACK_COLUMNS)} FROM tracks "
                           "WHERE content_hash = ? ORDER BY id", (content_hash,))
        return [_track(r) for r in rows]

    def save_track(self, record: TrackRecord, lyrics: Lyrics | None,
                   track_id: int | None = None) -> int:
        """Insert a new track, or replace what is known of ``track_id`` (identity kept).

        The track's lyrics are replaced in the same transaction, and a track that was
        missing is present again.
        """
        values = asdict(record)
        now = time.time()
        with self.transaction() as conn:
            if track_id is None:
                columns = [*_RECORD_COLUMNS, "added_at", "updated_at"]
                cursor = conn.execute(
                    f"INSERT INTO tracks ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' * len(columns))})",
                    [values[c] for c in _RECORD_COLUMNS] + [now, now])
                track_id = int(cursor.lastrowid)
            else:
                assignments = ", ".join(f"{c} = ?" for c in _RECORD_COLUMNS)
                conn.execute(
                    f"UPDATE tracks SET {assignments}, updated_at = ?, missing_since = NULL "
                    "WHERE id = ?", [values[c] for c in _RECORD_COLUMNS] + [now, track_id])
            conn.execute("DELETE FROM lyrics WHERE track_id = ?", (track_id,))
            if lyrics is not None:
                conn.execute("INSERT INTO lyrics (track_id, source, text, text_hash, synced) "
                             "VALUES (?, ?, ?, ?, ?)",
                             (track_id, lyrics.source, lyrics.text, text_hash(lyrics.text),
                              int(lyrics.synced)))
            conn.execute("DELETE FROM scan_errors WHERE path = ?", (record.path,))
        return track_id

    def touch_track(self, track_id: int, *, size: int, mtime_ns: int) -> None:
        """Record new file stats for a file whose content did not change."""
        with self.transaction() as conn:
            conn.execute("UPDATE tracks SET size = ?, mtime_ns = ?, missing_since = NULL "
                         "WHERE id = ?", (size, mtime_ns, track_id))

    def mark_missing(self, track_ids: Iterable[int]) -> int:
        ids = list(track_ids)
        with self.transaction() as conn:
            conn.executemany("UPDATE tracks SET missing_since = ? WHERE id = ?",
                             [(time.time(), i) for i in ids])
        return len(ids)

    def lyrics(self, track_id: int) -> Lyrics | None:
        rows = self._query("SELECT source, text, synced FROM lyrics WHERE track_id = ?",
                           (track_id,))
        return Lyrics(rows[0]["source"], rows[0]["text"], bool(rows[0]["synced"])) if rows else None

    # -- vectors -------------------------------------------------------------------

    def vector_space(self, kind: VectorKind, model: str, version: str, dim: int) -> VectorSpace:
        """The space for ``kind`` vectors of this model version, created on first use."""
        with self.transaction() as conn:
            conn.execute("INSERT INTO vector_spaces (kind, model, version, dim, created_at) "
                         "VALUES (?, ?, ?, ?, ?) ON CONFLICT(kind, model, version) DO NOTHING",
                         (kind, model, version, dim, time.time()))
            row = conn.execute("SELECT * FROM vector_spaces WHERE kind = ? AND model = ? "
                               "AND version = ?", (kind, model, version)).fetchone()
        space = _space(row)
        if space.dim != dim:
            raise VectorSpaceMismatch(
                f"{model}@{version} was stored with {space.dim}-d {kind} vectors but now "
                f"produces {dim}-d ones; give the changed model a new version")
        return space

    def vector_spaces(self) -> list[VectorSpace]:
        return [_space(r) for r in self._query("SELECT * FROM vector_spaces ORDER BY kind, id")]

    def put_vectors(self, space: VectorSpace, track_id: int, source_hash: str,
                    vectors: np.ndarray) -> None:
        """Replace the track's vectors in ``space`` (``[chunks, dim]`` or ``[dim]``)."""
        matrix = np.asarray(vectors, dtype="<f4").reshape(-1, vectors.shape[-1])
        if matrix.shape[1] != space.dim or matrix.shape[0] == 0:
            raise VectorSpaceMismatch(
                f"cannot store {matrix.shape[1]}-d vectors in the {space.dim}-d space of "
                f"{space.model}@{space.version} ({space.kind}); vectors of different models "
                "are never mixed")
        with self.transaction() as conn:
            conn.execute("DELETE FROM vectors WHERE space_id = ? AND track_id = ?",
                         (space.id, track_id))
            conn.execute("DELETE FROM embed_failures WHERE space_id = ? AND track_id = ?",
                         (space.id, track_id))
            conn.executemany(
                "INSERT INTO vectors (space_id, track_id, chunk, source_hash, vector) "
                "VALUES (?, ?, ?, ?, ?)",
                [(space.id, track_id, i, source_hash, row.tobytes()) for i, row in enumerate(matrix)])

    def vectors(self, space: VectorSpace, track_ids: Iterable[int] | None = None) -> StoredVectors:
        """The vectors of present tracks in ``space`` (all, or of ``track_ids``), in
        (track, chunk) order."""
        sql = ("SELECT v.track_id, v.chunk, v.vector FROM vectors v "
               "JOIN tracks t ON t.id = v.track_id "
               "WHERE v.space_id = ? AND t.missing_since IS NULL {} ORDER BY v.track_id, v.chunk")
        if track_ids is None:
            rows = self._query(sql.format(""), (space.id,))
        else:
            rows = self._query_ids(sql.format("AND v.track_id IN ({ids})"), track_ids,
                                   (space.id,))
        matrix = np.frombuffer(b"".join(r["vector"] for r in rows), dtype="<f4")
        return StoredVectors(space=space,
                             track_ids=np.array([r["track_id"] for r in rows], dtype=np.int64),
                             chunks=np.array([r["chunk"] for r in rows], dtype=np.int64),
                             matrix=matrix.reshape(len(rows), space.dim).astype(np.float32))

    def vector_manifest(self, space: VectorSpace) -> dict[tuple[int, int], str]:
        """(track id, chunk) -> source hash of every vector of a present track in ``space``:
        what a vector index of this space must hold."""
        rows = self._query("SELECT v.track_id, v.chunk, v.source_hash FROM vectors v "
                           "JOIN tracks t ON t.id = v.track_id "
                           "WHERE v.space_id = ? AND t.missing_since IS NULL", (space.id,))
        return {(r[0], r[1]): r[2] for r in rows}

    def tracks_needing_audio_vectors(self, space: VectorSpace) -> list[Track]:
        """Present tracks whose audio has no vector in ``space`` (or changed since), and
        that did not already fail on this very content."""
        return self._tracks_needing(space, "t.content_hash", "")

    def tracks_needing_lyrics_vectors(self, space: VectorSpace) -> list[Track]:
        return self._tracks_needing(space, "l.text_hash",
                                    "JOIN lyrics l ON l.track_id = t.id")

    def _tracks_needing(self, space: VectorSpace, source: str, join: str) -> list[Track]:
        columns = ", ".join(f"t.{c}" for c in _TRACK_COLUMNS)
        rows = self._query(
            f"SELECT {columns} FROM tracks t {join} WHERE t.missing_since IS NULL "
            f"AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.space_id = ? "
            f"  AND v.track_id = t.id AND v.source_hash = {source}) "
            f"AND NOT EXISTS (SELECT 1 FROM embed_failures f WHERE f.space_id = ? "
            f"  AND f.track_id = t.id AND f.source_hash = {source}) ORDER BY t.id",
            (space.id, space.id))
        return [_track(r) for r in rows]

    def record_embed_failure(self, space: VectorSpace, track_id: int, source_hash: str,
                             error: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO embed_failures (space_id, track_id, source_hash, error, "
                         "failed_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(space_id, track_id) "
                         "DO UPDATE SET source_hash = excluded.source_hash, "
                         "error = excluded.error, failed_at = excluded.failed_at",
                         (space.id, track_id, source_hash, error, time.time()))

    def embed_failures(self) -> list[tuple[str, str, str]]:
        """(track path, space description, error) of every track a model could not embed."""
        rows = self._query("SELECT t.path, s.kind, s.model, f.error FROM embed_failures f "
                           "JOIN tracks t ON t.id = f.track_id "
                           "JOIN vector_spaces s ON s.id = f.space_id ORDER BY t.path")
        return [(r["path"], f"{r['kind']} ({r['model']})", r["error"]) for r in rows]

    def vector_counts(self) -> dict[int, int]:
        """Space id -> number of present tracks with vectors in it."""
        rows = self._query("SELECT v.space_id, count(DISTINCT v.track_id) AS n FROM vectors v "
                           "JOIN tracks t ON t.id = v.track_id WHERE t.missing_since IS NULL "
                           "GROUP BY v.space_id")
        return {r["space_id"]: r["n"] for r in rows}

    # -- descriptors -----------------------------------------------------------------

    def put_descriptors(self, descriptors: TrackDescriptors, source_hash: str) -> None:
        """Store what was measured from the track's audio ``source_hash`` (replacing any
        earlier values or failure). The key's spelling is normalised (``KEY_NAMES``)."""
        values = {c: getattr(descriptors, c) for c in _DESCRIPTOR_COLUMNS}
        if descriptors.key is not None:
            values["key"] = parse_key(descriptors.key)[0]
        self._put_descriptor_row({**values, "source_hash": source_hash, "error": None})

    def record_descriptor_failure(self, track_id: int, source_hash: str, analyser: str,
                                  analyser_version: str, error: str) -> None:
        """The analyser could not measure this content; it is not retried until the file
        changes or another analyser is used."""
        self._put_descriptor_row({"track_id": track_id, "source_hash": source_hash,
                                  "analyser": analyser, "analyser_version": analyser_version,
                                  "error": error})

    def _put_descriptor_row(self, values: dict[str, Any]) -> None:
        columns = [*values, "analysed_at"]
        with self.transaction() as conn:
            conn.execute(f"INSERT OR REPLACE INTO descriptors ({', '.join(columns)}) "
                         f"VALUES ({', '.join('?' * len(columns))})",
                         [*values.values(), time.time()])

    def descriptor_failures(self) -> list[tuple[str, str, str]]:
        """(track path, analyser, error) of every track whose analysis failed."""
        rows = self._query("SELECT t.path, d.analyser, d.error FROM descriptors d "
                           "JOIN tracks t ON t.id = d.track_id WHERE d.error IS NOT NULL "
                           "ORDER BY t.path")
        return [(r["path"], r["analyser"], r["error"]) for r in rows]

    def descriptors(self, track_ids: Iterable[int] | None = None) -> dict[int, TrackDescriptors]:
        """Track id -> descriptors of present tracks (all, or of ``track_ids``) measured from
        their current audio. Tracks not (yet) analysed, or whose analysis failed, are absent."""
        sql = (f"SELECT {', '.join('d.' + c for c in _DESCRIPTOR_COLUMNS)} FROM descriptors d "
               "JOIN tracks t ON t.id = d.track_id WHERE t.missing_since IS NULL "
               "AND d.source_hash = t.content_hash AND d.error IS NULL {}")
        if track_ids is None:
            rows = self._query(sql.format(""))
        else:
            rows = self._query_ids(sql.format("AND d.track_id IN ({ids})"), track_ids)
        return {row["track_id"]: TrackDescriptors(**dict(row)) for row in rows}

    def tracks_needing_descriptors(self, analyser: str) -> list[Track]:
        """Present tracks with no descriptors (nor a failure) from ``analyser`` for their
        current audio: new and changed files, tracks indexed before descriptors existed,
        and every track after a change of analyser."""
        columns = ", ".join(f"t.{c}" for c in _TRACK_COLUMNS)
        rows = self._query(
            f"SELECT {columns} FROM tracks t WHERE t.missing_since IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM descriptors d WHERE d.track_id = t.id "
            "  AND d.source_hash = t.content_hash AND d.analyser = ?) ORDER BY t.id",
            (analyser,))
        return [_track(r) for r in rows]

    # -- feedback ------------------------------------------------------------------

    def add_feedback(self, track_id: int, kind: FeedbackKind, query: str | None = None) -> int:
        with self.transaction() as conn:
            cursor = conn.execute("INSERT INTO feedback (track_id, kind, query, created_at) "
                                  "VALUES (?, ?, ?, ?)", (track_id, kind, query, time.time()))
            return int(cursor.lastrowid)

    # -- covers --------------------------------------------------------------------

    def add_cover(self, cover: CoverImage) -> int:
        """Store an image once (by content hash) and return its id."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO covers (sha256, source, path, mime, width, height, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sha256) DO NOTHING",
                (cover.sha256, cover.source, cover.path, cover.mime, cover.width,
                 cover.height, cover.data))
            return conn.execute("SELECT id FROM covers WHERE sha256 = ?",
                                (cover.sha256,)).fetchone()[0]

    def cover(self, cover_id: int) -> CoverImage | None:
        rows = self._query("SELECT sha256, source, path, mime, width, height, data "
                           "FROM covers WHERE id = ?", (cover_id,))
        return CoverImage(**dict(rows[0])) if rows else None

    # -- scan errors ---------------------------------------------------------------

    def record_error(self, path: str, error: str, *, root_id: int | None,
                     size: int | None = None, mtime_ns: int | None = None) -> None:
        now = time.time()
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO scan_errors (path, root_id, size, mtime_ns, error, first_seen, "
                "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
                "size = excluded.size, mtime_ns = excluded.mtime_ns, error = excluded.error, "
                "last_seen = excluded.last_seen",
                (path, root_id, size, mtime_ns, error, now, now))

    def clear_errors(self, paths: Iterable[str]) -> None:
        with self.transaction() as conn:
            conn.executemany("DELETE FROM scan_errors WHERE path = ?", [(p,) for p in paths])

    def errors(self) -> list[ScanErrorRow]:
        rows = self._query("SELECT path, error, size, mtime_ns, first_seen, last_seen "
                           "FROM scan_errors ORDER BY path")
        return [ScanErrorRow(**dict(r)) for r in rows]

    def errors_under(self, root: Path) -> dict[str, ScanErrorRow]:
        prefix = str(root).rstrip("/") + "/"
        return {e.path: e for e in self.errors() if e.path.startswith(prefix)}

    # -- jobs ----------------------------------------------------------------------

    def start_job(self, kind: str, params: dict[str, Any], total: int | None = None, *,
                  pid: int | None = None) -> int:
        """Record a running job owned by process ``pid`` (default: this process)."""
        now = time.time()
        pid = os.getpid() if pid is None else pid
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO jobs (kind, status, params, total, created_at, updated_at, pid, "
                "owner) VALUES (?, 'running', ?, ?, ?, ?, ?, ?)",
                (kind, json.dumps(params), total, now, now, pid, _process_owner(pid)))
            return int(cursor.lastrowid)

    def job_process_alive(self, job: Job) -> bool:
        """Whether the process that started ``job`` still runs. A process on another host
        cannot be checked and counts as alive; a job without a recorded process (written
        before jobs recorded one) counts as orphaned."""
        pid = job.pid if job.pid is not None else job.params.get("pid")
        return _process_alive(pid, job.owner)

    def interrupt_orphaned_jobs(self) -> list[Job]:
        """Mark jobs left "running" by a process that has ended as "interrupted" (at
        start-up: a crash or kill never finished them); jobs of live processes stay."""
        orphaned = [job for job in self.jobs(status="running") if not self.job_process_alive(job)]
        now = time.time()
        with self.transaction() as conn:
            for job in orphaned:
                pid = job.pid if job.pid is not None else job.params.get("pid")
                process = f" (pid {pid})" if isinstance(pid, int) else ""
                progress = f"; {job.done} of {job.total} done" if job.total else ""
                conn.execute(
                    "UPDATE jobs SET status = 'interrupted', message = ?, updated_at = ?, "
                    "finished_at = ? WHERE id = ? AND status = 'running'",
                    (f"interrupted: the process running it{process} ended{progress}",
                     now, now, job.id))
        return [self.job(job.id) for job in orphaned]  # type: ignore[misc]

    def update_job(self, job_id: int, *, done: int, total: int | None,
                   message: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE jobs SET done = ?, total = ?, message = ?, updated_at = ? "
                         "WHERE id = ?", (done, total, message, time.time(), job_id))

    def finish_job(self, job_id: int, status: JobStatus, *, message: str | None = None,
                   error: str | None = None) -> None:
        now = time.time()
        with self.transaction() as conn:
            conn.execute("UPDATE jobs SET status = ?, message = COALESCE(?, message), error = ?, "
                         "updated_at = ?, finished_at = ? WHERE id = ?",
                         (status, message, error, now, now, job_id))

    def job(self, job_id: int) -> Job | None:
        rows = self._query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def jobs(self, *, kind: str | None = None, status: JobStatus | None = None) -> list[Job]:
        rows = self._query("SELECT * FROM jobs WHERE (? IS NULL OR kind = ?) "
                           "AND (? IS NULL OR status = ?) ORDER BY id",
                           (kind, kind, status, status))
        return [_job(r) for r in rows]

    # -- stats ---------------------------------------------------------------------

    def stats(self) -> CatalogStats:
        row = self._query("""
            SELECT count(*) AS tracks,
                   count(DISTINCT lower(coalesce(album_artist, artist))) AS artists,
                   count(DISTINCT lower(album)) AS albums,
                   coalesce(sum(duration), 0) AS total_duration,
                   count(cover_id) AS with_cover,
                   (SELECT count(*) FROM lyrics JOIN tracks t ON t.id = lyrics.track_id
                     WHERE t.missing_since IS NULL) AS with_lyrics,
                   (SELECT count(*) FROM tracks WHERE missing_since IS NOT NULL) AS missing,
                   (SELECT count(*) FROM scan_errors) AS errors
            FROM tracks WHERE missing_since IS NULL""")[0]
        formats = {r["format"]: r["n"] for r in self._query(
            "SELECT format, count(*) AS n FROM tracks WHERE missing_since IS NULL "
            "GROUP BY format ORDER BY n DESC, format")}
        return CatalogStats(**dict(row), roots=self.roots(), formats=formats)


class JobProgress:
    """Writes a job's progress at most every ``interval`` seconds (each write is a
    transaction), and always its last step."""

    def __init__(self, catalog: Catalog, job_id: int, interval: float = 0.5) -> None:
        self.catalog, self.job_id, self.interval = catalog, job_id, interval
        self._last = float("-inf")

    def update(self, done: int, total: int | None, message: str) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval or done == total:
            self.catalog.update_job(self.job_id, done=done, total=total, message=message)
            self._last = now


def _process_owner(pid: int) -> str | None:
    """"host/start time" of process ``pid``, or None when it cannot be read."""
    stat = _proc_stat(pid)
    return f"{socket.gethostname()}/{stat[1]}" if stat else None


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of ``pid`` from Linux's /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (fields[0], fields[19]) if len(fields) > 19 else None


def _process_alive(pid: object, owner: str | None) -> bool:
    """The one rule for "is the process that owns a job still running?"."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    host, _, started = (owner or "").rpartition("/")
    if host and host != socket.gethostname():
        return True  # another machine's process (a shared catalog): cannot tell
    if os.path.isdir("/proc/self"):
        stat = _proc_stat(pid)
        # Gone, a zombie (ended, not yet reaped), or the pid now belongs to another process.
        return stat is not None and stat[0] != "Z" and (not started or stat[1] == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _contains_pattern(value: str) -> str:
    """A LIKE pattern (escape character ``!``) matching ``value`` literally, anywhere."""
    escaped = value.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _space(row: sqlite3.Row) -> VectorSpace:
    return VectorSpace(**dict(row))


def _track(row: sqlite3.Row) -> Track:
    return Track(**{c: row[c] for c in _TRACK_COLUMNS})


def _job(row: sqlite3.Row) -> Job:
    values = dict(row)
    values["params"] = json.loads(values["params"])
    return Job(**values)
