"""Versioned catalog schema.

``MIGRATIONS[i]`` moves a catalog from version ``i`` to ``i + 1``; the version lives
in ``PRAGMA user_version``. Each migration runs in one transaction, so a crash
mid-migration leaves the previous version intact. Append new migrations; never edit
a released one.
"""

from __future__ import annotations

import sqlite3

from newwave.errors import Unavailable

MIGRATIONS: list[str] = [
    # 0 -> 1: the first catalog.
    """
    CREATE TABLE library_roots (
        id            INTEGER PRIMARY KEY,
        path          TEXT NOT NULL UNIQUE,
        added_at      REAL NOT NULL,
        last_scan_at  REAL
    );
    CREATE TABLE covers (
        id      INTEGER PRIMARY KEY,
        sha256  TEXT NOT NULL UNIQUE,
        source  TEXT NOT NULL CHECK (source IN ('embedded', 'folder')),
        path    TEXT,              -- folder images: the image file; embedded: NULL
        mime    TEXT NOT NULL,
        width   INTEGER,
        height  INTEGER,
        data    BLOB,              -- embedded images only
        CHECK ((source = 'folder') = (path IS NOT NULL))
    );
    CREATE TABLE tracks (
        id            INTEGER PRIMARY KEY,
        path          TEXT NOT NULL UNIQUE,
        root_id       INTEGER REFERENCES library_roots(id) ON DELETE SET NULL,
        content_hash  TEXT NOT NULL,
        size          INTEGER NOT NULL,
        mtime_ns      INTEGER NOT NULL,
        sidecar_sig   TEXT NOT NULL DEFAULT '',
        format        TEXT NOT NULL,
        codec         TEXT,
        duration      REAL,
        sample_rate   INTEGER,
        channels      INTEGER,
        bitrate       INTEGER,
        title         TEXT NOT NULL,
        artist        TEXT,
        album         TEXT,
        album_artist  TEXT,
        track_number  INTEGER,
        disc_number   INTEGER,
        year          INTEGER,
        genre         TEXT,
        comment       TEXT,
        bpm           REAL,
        tags_source   TEXT NOT NULL CHECK (tags_source IN ('tags', 'filename', 'mixed')),
        cover_id      INTEGER REFERENCES covers(id) ON DELETE SET NULL,
        added_at      REAL NOT NULL,
        updated_at    REAL NOT NULL,
        missing_since REAL          -- set when the file vanished; identity kept for its return
    );
    CREATE INDEX tracks_by_hash ON tracks(content_hash);
    CREATE INDEX tracks_by_artist ON tracks(artist COLLATE NOCASE);
    CREATE INDEX tracks_by_album ON tracks(album COLLATE NOCASE);
    CREATE TABLE lyrics (
        track_id  INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
        source    TEXT NOT NULL CHECK (source IN ('embedded', 'lrc', 'txt')),
        text      TEXT NOT NULL,
        text_hash TEXT NOT NULL,               -- identifies the text its vectors came from
        synced    INTEGER NOT NULL DEFAULT 0   -- 1 when the source carried timestamps
    );
    CREATE TABLE scan_errors (
        path        TEXT PRIMARY KEY,
        root_id     INTEGER REFERENCES library_roots(id) ON DELETE CASCADE,
        size        INTEGER,
        mtime_ns    INTEGER,
        error       TEXT NOT NULL,
        first_seen  REAL NOT NULL,
        last_seen   REAL NOT NULL
    );
    CREATE TABLE feedback (
        id          INTEGER PRIMARY KEY,
        track_id    INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
        kind        TEXT NOT NULL CHECK (kind IN ('like', 'dislike', 'skip', 'play')),
        query       TEXT,
        created_at  REAL NOT NULL
    );
    CREATE INDEX feedback_by_track ON feedback(track_id);
    -- A vector space is one model (name, version, dimension) used for one kind of
    -- vector; vectors of different spaces are never compared.
    CREATE TABLE vector_spaces (
        id          INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL CHECK (kind IN ('audio-text', 'audio', 'lyrics')),
        model       TEXT NOT NULL,
        version     TEXT NOT NULL,
        dim         INTEGER NOT NULL CHECK (dim > 0),
        created_at  REAL NOT NULL,
        UNIQUE (kind, model, version)
    );
    CREATE TABLE vectors (
        space_id     INTEGER NOT NULL REFERENCES vector_spaces(id) ON DELETE CASCADE,
        track_id     INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
        chunk        INTEGER NOT NULL DEFAULT 0,   -- long lyrics: one row per window
        source_hash  TEXT NOT NULL,                -- the audio/lyrics it was computed from
        vector       BLOB NOT NULL,                -- float32, little-endian
        PRIMARY KEY (space_id, track_id, chunk)
    );
    CREATE INDEX vectors_by_track ON vectors(track_id);
    CREATE TABLE embed_failures (
        space_id     INTEGER NOT NULL REFERENCES vector_spaces(id) ON DELETE CASCADE,
        track_id     INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
        source_hash  TEXT NOT NULL,
        error        TEXT NOT NULL,
        failed_at    REAL NOT NULL,
        PRIMARY KEY (space_id, track_id)
    );
    CREATE TABLE jobs (
        id           INTEGER PRIMARY KEY,
        kind         TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
        params       TEXT NOT NULL DEFAULT '{}',
        done         INTEGER NOT NULL DEFAULT 0,
        total        INTEGER,
        message      TEXT,
        error        TEXT,
        created_at   REAL NOT NULL,
        updated_at   REAL NOT NULL,
        finished_at  REAL
    );
    """,
    # 1 -> 2: a job records the process running it (pid, and "host/start time" against
    # pid reuse), so a job left "running" by a dead process can be told from a live one.
    """
    ALTER TABLE jobs ADD COLUMN pid INTEGER;
    ALTER TABLE jobs ADD COLUMN owner TEXT;
    """,
    # 2 -> 3: musical descriptors measured from each track's audio (newwave.audio.descriptors).
    # One row per track: the values, or the error that stopped the analysis (then the
    # values are NULL). A row counts for the audio content and the analyser it names; a
    # changed file or another analyser makes the track due for analysis again.
    """
    CREATE TABLE descriptors (
        track_id          INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
        source_hash       TEXT NOT NULL,     -- the content hash of the audio analysed
        analyser          TEXT NOT NULL,     -- 'librosa' or 'essentia'
        analyser_version  TEXT NOT NULL,
        bpm               REAL CHECK (bpm > 0),
        bpm_confidence    REAL CHECK (bpm_confidence BETWEEN 0 AND 1),
        key               TEXT CHECK (key IN ('C', 'C#', 'D', 'Eb', 'E', 'F', 'F#', 'G',
                                              'Ab', 'A', 'Bb', 'B')),
        mode              TEXT CHECK (mode IN ('major', 'minor')),
        key_confidence    REAL CHECK (key_confidence BETWEEN 0 AND 1),
        loudness_lufs     REAL,              -- BS.1770 integrated, of the mono downmix
        error             TEXT,              -- why the analysis failed (values NULL)
        analysed_at       REAL NOT NULL,
        CHECK ((key IS NULL) = (mode IS NULL)),
        CHECK (error IS NULL OR (bpm IS NULL AND key IS NULL AND loudness_lufs IS NULL))
    );
    CREATE INDEX descriptors_by_bpm ON descriptors(bpm);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaError(Unavailable, RuntimeError):
    """The catalog cannot be used by this version of NewWave."""


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the catalog to ``SCHEMA_VERSION``; return the version found before."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise SchemaError(
            f"catalog schema version {found} is newer than this NewWave supports "
            f"({SCHEMA_VERSION}); upgrade NewWave or point --data-dir elsewhere"
        )
    for version in range(found, SCHEMA_VERSION):
        # executescript commits any open transaction first; the script carries its own.
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{MIGRATIONS[version]}\n"
                f"PRAGMA user_version = {version + 1};\nCOMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                conn.rollback()
            raise
    return found
