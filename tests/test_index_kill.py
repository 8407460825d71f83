"""Killing `newwave index` mid-embed loses and duplicates nothing.

Real processes throughout: the console script (``.venv/bin/newwave``) indexes a
generated library into its own data dir (``NEWWAVE_DATA_DIR``), then a second run over
the library grown by 18 new files is killed with SIGKILL to its whole process group (the
CLI and its audio workers) once the catalog, polled read-only, shows some but not all of
the new tracks embedded. A third run completes it, and:

- it re-embeds exactly the tracks the killed run had not finished (none twice);
- every track has its vectors in each audio space exactly once, with the content hash
  of its file, and the persisted FAISS indexes hold exactly the catalog's vectors (ids
  unique, checksums intact, nothing left to sync, no temporary files);
- a fourth run (``--verify``) finds nothing to do, and a search by example
  (``newwave similar``) ranks every other track;
- the killed run's scan job finished (the scan was over when it died), and its embed
  job is marked interrupted by the next run.

The module runs the four commands once (about a minute and a half on 2 cores) and the
tests read what they left.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import pytest

from conftest import make_audio
from newwave.catalog import Catalog, VectorSpace
from newwave.index.faiss_index import CHUNK_BITS, VectorIndex

NEWWAVE = Path(sys.executable).with_name("newwave")  # the console script
NEW_TRACKS = 18
KILL_AFTER = 3  # new tracks embedded (in every audio space) before the kill
AUDIO_KINDS = ("audio-text", "audio")

pytestmark = pytest.mark.timeout(900)


@dataclass
class KillRun:
    base: Path
    library: Path
    data: Path
    killed_pid: int
    embedded_at_kill: dict[str, set[int]]  # audio space kind -> track ids with vectors
    tracks_at_kill: int
    jobs_at_kill: list[tuple[int, str, str, int]]  # (id, kind, status, pid)
    resumed: subprocess.CompletedProcess
    verified: subprocess.CompletedProcess
    logs: str


def newwave(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(NEWWAVE), *args], env=env, capture_output=True, text=True,
                          timeout=600)


def read_only(catalog_path: Path) -> sqlite3.Connection:
    """A connection that cannot write (and so never takes the indexer's lock)."""
    return sqlite3.connect(f"{catalog_path.as_uri()}?mode=ro", uri=True, timeout=10)


def embedded_tracks(conn: sqlite3.Connection) -> dict[str, set[int]]:
    """Audio space kind -> the tracks with vectors in that kind's newest space."""
    found: dict[str, set[int]] = {}
    for kind in AUDIO_KINDS:
        rows = conn.execute(
            "SELECT DISTINCT track_id FROM vectors WHERE space_id = "
            "(SELECT max(id) FROM vector_spaces WHERE kind = ?)", (kind,)).fetchall()
        found[kind] = {r[0] for r in rows}
    return found


@pytest.fixture(scope="module")
def kill_run(tmp_path_factory: pytest.TempPathFactory,
             synthetic_library_template: Path) -> KillRun:
    if not NEWWAVE.exists():
        pytest.fail(f"{NEWWAVE}: the console script is not installed (pip install -e .)")
    base = tmp_path_factory.mktemp("index-kill")
    library, data = base / "library", base / "data"
    shutil.copytree(synthetic_library_template, library)
    env = {**os.environ, "NEWWAVE_DATA_DIR": str(data), "NEWWAVE_CACHE_DIR": str(base / "cache"),
           "COLUMNS": "250"}
    # 1. A complete run: the catalog and the persisted indexes hold 6 tracks.
    first = newwave(env, "index", str(library))
    assert first.returncode == 0, first.stdout + first.stderr

    # 2. 18 new files (distinct pitches, so distinct contents), and a run killed mid-embed.
    formats = [".flac", ".wav", ".mp3", ".ogg"]
    for n in range(NEW_TRACKS):
        make_audio(library / "Tones" / f"{n + 1:02d} Tone {n + 1}{formats[n % 4]}",
                   seconds=6.0, freq=110.0 * 2 ** (n / 12))
    log_path = base / "killed.log"
    catalog_path = data / "catalog.sqlite"
    with open(log_path, "wb") as log, closing(read_only(catalog_path)) as conn:
        process = subprocess.Popen([str(NEWWAVE), "index", str(library)], env=env,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # its own process group
        try:
            deadline = time.monotonic() + 300
            while True:
                tracks = conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
                embedded = embedded_tracks(conn)
                new_done = len(set.intersection(*embedded.values())) - 6
                if tracks == 6 + NEW_TRACKS and new_done >= KILL_AFTER:
                    os.killpg(process.pid, signal.SIGKILL)
                    break
                assert process.poll() is None, \
                    f"the run ended before it could be killed:\n{log_path.read_text()}"
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.02)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
        # What the killed run left behind, read once it is surely dead.
        embedded_at_kill = embedded_tracks(conn)
        tracks_at_kill = conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
        jobs_at_kill = [tuple(r) for r in conn.execute(
            "SELECT id, kind, status, pid FROM jobs WHERE pid = ? ORDER BY id",
            (process.pid,))]
    assert process.returncode == -signal.SIGKILL
    assert all(len(done) < 6 + NEW_TRACKS for done in embedded_at_kill.values()), \
        "the killed run had already embedded every track: nothing was interrupted"

    # 3. The same command again, to completion; 4. once more, verifying.
    resumed = newwave(env, "index", str(library))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    verified = newwave(env, "index", "--verify", str(library))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    return KillRun(base, library, data, process.pid, embedded_at_kill, tracks_at_kill,
                   jobs_at_kill, resumed, verified, log_path.read_text())


def audio_spaces(catalog: Catalog) -> list[VectorSpace]:
    newest: dict[str, VectorSpace] = {}
    for space in catalog.vector_spaces():
        if space.id > getattr(newest.get(space.kind), "id", -1):
            newest[space.kind] = space
    return [newest[kind] for kind in (*AUDIO_KINDS, "lyrics") if kind in newest]


def embedded_counts(result: subprocess.CompletedProcess) -> tuple[int, int]:
    found = re.search(r"Embedded (\d+) tracks' audio and (\d+) tracks' lyrics", result.stdout)
    assert found, result.stdout
    return int(found[1]), int(found[2])


def test_the_next_run_embeds_exactly_what_the_killed_run_had_not_finished(
        kill_run: KillRun) -> None:
    assert kill_run.tracks_at_kill == 6 + NEW_TRACKS  # the scan had committed every file
    finished = set.intersection(*kill_run.embedded_at_kill.values())
    assert 6 + KILL_AFTER <= len(finished) < 6 + NEW_TRACKS
    assert embedded_counts(kill_run.resumed) == (6 + NEW_TRACKS - len(finished), 0)
    assert "failed" not in kill_run.resumed.stdout.split("Embedded", 1)[1]
    assert embedded_counts(kill_run.verified) == (0, 0)  # and then nothing is left


def test_every_track_has_its_vectors_once_in_every_space(kill_run: KillRun) -> None:
    with closing(read_only(kill_run.data / "catalog.sqlite")) as conn:
        assert conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM vectors GROUP BY space_id, track_id, chunk "
            "HAVING count(*) > 1)").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM embed_failures").fetchone()[0] == 0
        tracks = dict(conn.execute("SELECT id, content_hash FROM tracks "
                                   "WHERE missing_since IS NULL").fetchall())
        assert len(tracks) == 6 + NEW_TRACKS
        for kind in AUDIO_KINDS:
            rows = conn.execute(
                "SELECT track_id, chunk, source_hash FROM vectors WHERE space_id = "
                "(SELECT max(id) FROM vector_spaces WHERE kind = ?) ORDER BY track_id",
                (kind,)).fetchall()
            # One vector per track and audio space (musicnn pools a track's windows).
            assert [(t, c, h) for t, c, h in rows] == \
                [(t, 0, h) for t, h in sorted(tracks.items())], kind


def test_the_persisted_indexes_hold_exactly_the_catalogs_vectors(
        kill_run: KillRun, caplog: pytest.LogCaptureFixture) -> None:
    folder = kill_run.data / "indexes"
    assert not list(folder.glob("*.tmp"))  # no half-written file left behind
    printed = dict(re.findall(r"([\w-]+) (\d+) vectors", kill_run.verified.stdout))
    with Catalog(kill_run.data / "catalog.sqlite") as catalog:
        spaces = audio_spaces(catalog)
        assert [s.kind for s in spaces] == [*AUDIO_KINDS, "lyrics"]
        for space in spaces:
            wanted = catalog.vector_manifest(space)
            expected = sorted((track << CHUNK_BITS) | chunk for track, chunk in wanted)
            with caplog.at_level("INFO", logger="newwave.index"):
                index = VectorIndex(space, folder)  # verifies the BLAKE2b checksums
            assert "corrupt" not in caplog.text and "checksums" not in caplog.text, \
                caplog.text
            ids = faiss.vector_to_array(faiss.downcast_index(index.index).id_map)
            assert sorted(ids.tolist()) == expected, space.kind  # unique, and all of them
            assert sorted(index.manifest) == expected
            assert index.size == len(wanted) == int(printed[space.kind])
            assert index.check(catalog) == (0, 0)  # nothing to add, replace or remove
            if space.kind in AUDIO_KINDS:
                assert len({i >> CHUNK_BITS for i in expected}) == 6 + NEW_TRACKS
                # The indexed vectors are the catalog's, not stale copies.
                stored = catalog.vectors(space)
                found = index.index.reconstruct_batch(
                    np.asarray((stored.track_ids << CHUNK_BITS) | stored.chunks))
                np.testing.assert_array_equal(found, stored.matrix)


def test_a_search_returns_every_track(kill_run: KillRun) -> None:
    """A search by example (`newwave similar`, over the audio index) from one of the
    tracks the killed run never reached ranks every other track, each once."""
    env = {**os.environ, "NEWWAVE_DATA_DIR": str(kill_run.data),
           "NEWWAVE_CACHE_DIR": str(kill_run.base / "cache"), "COLUMNS": "250"}
    with closing(read_only(kill_run.data / "catalog.sqlite")) as conn:
        every = {r[0] for r in conn.execute("SELECT id FROM tracks")}
    source = max(every - set.union(*kill_run.embedded_at_kill.values()))
    result = newwave(env, "similar", str(source), "--limit", "100")
    assert result.returncode == 0, result.stdout + result.stderr
    ids = [int(cells[1]) for line in result.stdout.splitlines()
           if len(cells := [c.strip() for c in line.strip().strip("│┃").split("│")]) >= 6
           and cells[0].isdigit()]
    assert len(ids) == len(set(ids)) and set(ids) == every - {source}


def test_the_killed_runs_scan_job_had_finished(kill_run: KillRun) -> None:
    """Killed mid-embed, the run had already finished its scan job; its embed job was
    left "running" by a process that no longer exists."""
    assert [(kind, status) for _, kind, status, _ in kill_run.jobs_at_kill] == \
        [("scan", "done"), ("embed", "running")], (kill_run.jobs_at_kill, kill_run.logs)
    with Catalog(kill_run.data / "catalog.sqlite") as catalog:
        embed_job = catalog.job(kill_run.jobs_at_kill[1][0])
        assert not catalog.job_process_alive(embed_job)


def test_the_killed_runs_embed_job_is_marked_interrupted_by_the_next_run(
        kill_run: KillRun) -> None:
    with Catalog(kill_run.data / "catalog.sqlite") as catalog:
        job = catalog.job(kill_run.jobs_at_kill[1][0])
        assert job.status == "interrupted"
        assert job.message.startswith(
            f"interrupted: the process running it (pid {kill_run.killed_pid}) ended")
        assert not [j for j in catalog.jobs(status="running")]
