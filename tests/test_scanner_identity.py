"""The scanner's identity rules, on small libraries of generated files (no models).

Each test pins a rule with exact counts: which files are new, changed, moved, restored,
unchanged or missing; what a new, changed or moved track keeps (its id, its library
root, names guessed relative to that root); which failures are not retried; what the
scan job and the progress callback say after every file.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import make_audio, skip_or_fail
from newwave.catalog import Catalog
from newwave.library import Scanner, ScanProgress
from newwave.library.scanner import hash_file

# An ID3v2.5 header: no such version exists, so mutagen refuses the file's tags, while
# FFmpeg skips the header and reads the MP3 behind it.
ID3_V25 = b"ID3\x05\x00\x00\x00\x00\x00\x00"


def with_unreadable_tags(path: Path, freq: float) -> Path:
    make_audio(path, seconds=1.0, freq=freq)
    path.write_bytes(ID3_V25 + path.read_bytes())
    return path


def by_title(catalog: Catalog) -> dict:
    return {t.title: t for t in catalog.tracks(include_missing=True)}


def counts(report) -> tuple[int, ...]:
    return (report.added, report.updated, report.moved, report.restored, report.unchanged,
            report.missing, report.failed)


def test_content_identity_is_blake2b_128_of_every_byte(tmp_path: Path) -> None:
    # 1.25 MiB: more than one read of the hashing loop. BLAKE2b with a 16-byte digest
    # is what every catalogued content_hash is; another digest would make every file
    # of an existing catalog look changed.
    data = bytes(range(256)) * 5120
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert hash_file(path) == hashlib.blake2b(data, digest_size=16).hexdigest()
    assert len(hash_file(path)) == 32


def test_new_changed_and_moved_files_keep_their_root_and_name_guesses(
        catalog: Catalog, tmp_path: Path) -> None:
    """Names come from the path relative to the library root: a file directly in the
    root has no album; one in Band/Record/ is on album "Record". Files whose tags cannot
    be read fall back to their names, with a warning, whether new, changed or moved."""
    library = (tmp_path / "library").resolve()
    tune = with_unreadable_tags(library / "Solo - Tune.mp3", 440)
    other = with_unreadable_tags(library / "Solo - Other.mp3", 550)
    make_audio(library / "Band" / "Record" / "02 Band - Song.flac", seconds=1.0, freq=660)
    scanner = Scanner(catalog)
    first = scanner.scan(library)
    root_id = catalog.add_root(library)  # the scan's root (add_root returns the known id)
    assert counts(first) == (3, 0, 0, 0, 0, 0, 0)
    # The walk goes file by file in name order, the root's files before its folders.
    assert [w.split(": unreadable tags")[0] for w in first.warnings] == [str(other), str(tune)]
    assert all(w.endswith("; using the file name instead") for w in first.warnings)
    tracks = by_title(catalog)
    expected = {"Tune": ("Solo", None, None), "Other": ("Solo", None, None),
                "Song": ("Band", "Record", 2)}
    assert {title: (t.artist, t.album, t.track_number) for title, t in tracks.items()} == \
        expected
    assert {t.root_id for t in tracks.values()} == {root_id}
    assert {t.tags_source for t in tracks.values()} == {"filename"}

    # Tune's content changes (same path), Other is renamed (same content).
    with_unreadable_tags(tune, 880)
    renamed = other.rename(library / "Solo - Renamed.mp3")
    second = scanner.scan(library)
    assert counts(second) == (0, 1, 1, 0, 1, 0, 0)
    assert [w.split(": unreadable tags")[0] for w in second.warnings] == \
        [str(renamed), str(tune)]
    after = by_title(catalog)
    assert set(after) == {"Tune", "Renamed", "Song"}
    assert after["Tune"].id == tracks["Tune"].id
    assert after["Renamed"].id == tracks["Other"].id
    for title in ("Tune", "Renamed"):
        assert (after[title].artist, after[title].album, after[title].root_id) == \
            ("Solo", None, root_id), title


def test_several_changes_of_each_kind_in_one_scan_are_all_counted(
        catalog: Catalog, tmp_path: Path) -> None:
    library = (tmp_path / "library").resolve()
    parked = tmp_path / "parked"
    parked.mkdir()
    files = {name: make_audio(library / f"{name}.flac", seconds=1.0, freq=300 + 100 * i)
             for i, name in enumerate("abcdef")}
    scanner = Scanner(catalog)
    assert counts(scanner.scan(library)) == (6, 0, 0, 0, 0, 0, 0)
    ids = {name: t.id for name, t in by_title(catalog).items()}

    for i, name in enumerate("ab"):  # new content at the same path: updated
        make_audio(files[name], seconds=1.0, freq=1000 + 100 * i)
    for name in "cd":  # renamed: moved
        files[name].rename(library / f"{name}2.flac")
    for name in "ef":  # gone: missing
        shutil.move(files[name], parked / files[name].name)
    assert counts(scanner.scan(library)) == (0, 2, 2, 0, 0, 2, 0)
    tracks = by_title(catalog)
    assert {name: tracks[name].id for name in ("a", "b", "e", "f")} == \
        {name: ids[name] for name in "abef"}
    assert (tracks["c2"].id, tracks["d2"].id) == (ids["c"], ids["d"])
    gone_since = {name: tracks[name].missing_since for name in "ef"}
    assert None not in gone_since.values()

    # Still gone: not counted (nor stamped) again.
    assert counts(scanner.scan(library)) == (0, 0, 0, 0, 4, 0, 0)
    assert {name: by_title(catalog)[name].missing_since for name in "ef"} == gone_since

    for name in "ef":  # back, unchanged (a rename keeps size and mtime): restored
        shutil.move(parked / files[name].name, files[name])
    assert counts(scanner.scan(library)) == (0, 0, 0, 2, 4, 0, 0)
    tracks = by_title(catalog)
    assert [(tracks[name].id, tracks[name].missing_since) for name in "ef"] == \
        [(ids["e"], None), (ids["f"], None)]


def test_a_failing_file_is_remembered_with_its_stats_and_not_retried_until_it_changes(
        tmp_path: Path) -> None:
    library = (tmp_path / "library").resolve()
    make_audio(library / "good.flac", seconds=1.0)
    bad = library / "bad.mp3"
    bad.write_bytes(b"not an mp3" * 500)
    path = tmp_path / "catalog.sqlite"
    with Catalog(path) as catalog:
        scanner = Scanner(catalog)
        assert counts(scanner.scan(library)) == (1, 0, 0, 0, 0, 0, 1)
        root_id = catalog.add_root(library)
        [error] = catalog.errors()
        stat = bad.stat()
        assert (error.path, error.size, error.mtime_ns) == (str(bad), 5000, stat.st_mtime_ns)
        assert "cannot decode" in error.error
        with sqlite3.connect(path) as db:  # the error belongs to its library root
            assert db.execute("SELECT root_id FROM scan_errors").fetchall() == [(root_id,)]

        # Unchanged since it failed: counted as failed again without being read again
        # (its error row is not rewritten).
        assert counts(scanner.scan(library)) == (0, 0, 0, 0, 1, 0, 1)
        assert catalog.errors() == [error]

        # Touched: read again, and still failing.
        os.utime(bad, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        assert counts(scanner.scan(library)) == (0, 0, 0, 0, 1, 0, 1)
        [again] = catalog.errors()
        assert (again.mtime_ns, again.first_seen) == (stat.st_mtime_ns + 10**9, error.first_seen)
        assert again.last_seen > error.last_seen


def test_progress_and_the_scan_job_follow_every_file(tmp_path: Path) -> None:
    """With no throttling (``job_update_interval=0``) the job row is written after
    every file, so while file n is reported the job already shows file n - 1."""
    library = (tmp_path / "library").resolve()
    paths = [make_audio(library / f"{name}.flac", seconds=1.0, freq=f)
             for name, f in (("a", 300), ("b", 400), ("c", 500))]
    catalog_path = tmp_path / "catalog.sqlite"
    seen = []
    with Catalog(catalog_path) as writer, Catalog(catalog_path) as reader:
        def look(progress: ScanProgress) -> None:
            job = reader.jobs(kind="scan")[-1]
            seen.append(((progress.done, progress.total, progress.path), progress.report,
                         (job.done, job.total, job.message)))

        report = Scanner(writer, on_progress=look, job_update_interval=0).scan(library)
        job = reader.job(report.job_id)
    assert [progress for progress, _, _ in seen] == [(1, 3, paths[0]), (2, 3, paths[1]),
                                                     (3, 3, paths[2])]
    assert all(reported is report for _, reported, _ in seen)
    assert [shown for _, _, shown in seen] == [(0, None, None), (1, 3, str(paths[0])),
                                               (2, 3, str(paths[1]))]
    assert (job.status, job.done, job.total) == ("done", 3, 3)
    assert job.message == "3 added, 0 updated, 0 moved, 0 restored, 0 unchanged, " \
                          "0 missing, 0 failed"


@contextmanager
def no_permission_bypass() -> Iterator[None]:
    """File permissions apply to this thread even when it runs as root: its effective
    CAP_DAC_OVERRIDE (1) and CAP_DAC_READ_SEARCH (2) are dropped for the block and then
    restored (capabilities are per thread on Linux; the scan runs in this one)."""

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(header), data) != 0:
        skip_or_fail(f"capget failed (errno {ctypes.get_errno()})")
    saved = data[0].effective
    data[0].effective = saved & ~((1 << 1) | (1 << 2))
    if libc.capset(ctypes.byref(header), data) != 0:
        skip_or_fail(f"cannot drop the permission bypass (errno {ctypes.get_errno()})")
    try:
        yield
    finally:
        data[0].effective = saved
        assert libc.capset(ctypes.byref(header), data) == 0


def test_tracks_under_a_folder_the_scan_cannot_read_are_not_marked_missing(
        catalog: Catalog, tmp_path: Path) -> None:
    """Two folders become unreadable: their tracks are out of sight, not gone. The
    names are real-world ones that a careless prefix would get wrong: one ends in a
    space, one in "X"."""
    library = (tmp_path / "library").resolve()
    make_audio(library / "open" / "a.flac", seconds=1.0, freq=300)
    make_audio(library / "Malcolm X" / "b.flac", seconds=1.0, freq=400)
    make_audio(library / "Demos " / "c.flac", seconds=1.0, freq=500)
    scanner = Scanner(catalog)
    assert counts(scanner.scan(library)) == (3, 0, 0, 0, 0, 0, 0)
    locked = [library / "Demos ", library / "Malcolm X"]
    for folder in locked:
        os.chmod(folder, 0)
    try:
        with no_permission_bypass():
            report = scanner.scan(library)
    finally:
        for folder in locked:
            os.chmod(folder, 0o755)
    assert report.unreadable_dirs == [str(folder) for folder in locked]
    assert counts(report) == (0, 0, 0, 0, 1, 0, 0)
    assert [t.missing_since for t in catalog.tracks(include_missing=True)] == [None] * 3
