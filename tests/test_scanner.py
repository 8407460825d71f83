from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_audio
from newwave.catalog import Catalog
from newwave.demo.tagging import TagValues, write_tags
from newwave.library import ScanError, Scanner, ScanProgress


def by_title(catalog: Catalog) -> dict:
    return {t.title: t for t in catalog.tracks()}


def test_full_scan_reads_tags_lyrics_and_covers_of_every_format(
        catalog: Catalog, synthetic_library: Path) -> None:
    report = Scanner(catalog).scan(synthetic_library)
    assert (report.total, report.added, report.failed) == (6, 6, 0)
    tracks = by_title(catalog)
    assert {t.format for t in tracks.values()} == {"flac", "mp3", "ogg", "m4a", "opus", "wav"}
    piano = tracks["Rainy Window"]
    assert (piano.artist, piano.album, piano.genre, piano.year, piano.track_number) == \
        ("Mira Vale", "Quiet Rooms", "Classical", 2024, 1)
    assert piano.duration == pytest.approx(4.0, abs=0.1) and piano.tags_source == "tags"
    assert catalog.lyrics(piano.id).source == "embedded"
    strings = catalog.lyrics(tracks["Midnight Strings"].id)
    assert strings.source == "lrc" and strings.synced and "violin" in strings.text
    assert "[00:" not in strings.text
    # Night Shift has no embedded art: both its tracks share the folder image.
    techno, dnb = tracks["Warehouse Pulse"], tracks["Breakbeat Rush"]
    assert techno.cover_id == dnb.cover_id is not None
    folder_cover = catalog.cover(techno.cover_id)
    assert folder_cover.source == "folder" and folder_cover.width == 128
    embedded = catalog.cover(piano.cover_id)
    assert embedded.source == "embedded" and embedded.data.startswith(b"\x89PNG")
    assert catalog.job(report.job_id).status == "done"


def test_rescan_touches_only_what_changed(catalog: Catalog, synthetic_library: Path) -> None:
    scanner = Scanner(catalog)
    scanner.scan(synthetic_library)
    before = by_title(catalog)
    assert scanner.scan(synthetic_library).unchanged == 6

    # changed content (retag), new file, touched file, renamed file, deleted file
    drift = next(synthetic_library.rglob("*Drift.m4a"))
    write_tags(drift, TagValues(title="Drift (Remastered)"))
    make_audio(synthetic_library / "New Artist - New Song.flac", seconds=1.0)
    open_road = next(synthetic_library.rglob("*Open Road.ogg"))
    os.utime(open_road, ns=(time.time_ns(), time.time_ns() + 10**9))
    strings = next(synthetic_library.rglob("*Midnight Strings.opus"))
    moved_dir = synthetic_library / "Moved"
    moved_dir.mkdir()
    strings.rename(moved_dir / "strings.opus")
    strings.with_suffix(".lrc").rename(moved_dir / "strings.lrc")
    next(synthetic_library.rglob("*Breakbeat Rush.wav")).unlink()

    report = scanner.scan(synthetic_library)
    assert (report.added, report.updated, report.moved, report.missing) == (1, 1, 1, 1)
    assert report.unchanged == 3  # two untouched + one touched with the same content
    after = {t.title: t for t in catalog.tracks(include_missing=True)}
    assert after["Drift (Remastered)"].id == before["Drift"].id
    assert after["Midnight Strings"].id == before["Midnight Strings"].id
    assert after["Midnight Strings"].path == str(moved_dir / "strings.opus")
    assert "violin" in catalog.lyrics(after["Midnight Strings"].id).text
    assert after["Breakbeat Rush"].missing_since is not None
    assert "Breakbeat Rush" not in by_title(catalog)
    new = after["New Song"]
    assert (new.artist, new.tags_source) == ("New Artist", "filename")
    assert after["Open Road"].mtime_ns == open_road.stat().st_mtime_ns


def test_a_returning_file_gets_its_identity_back(catalog: Catalog, synthetic_library: Path,
                                                 tmp_path: Path) -> None:
    scanner = Scanner(catalog)
    scanner.scan(synthetic_library)
    piano = next(synthetic_library.rglob("*Rainy Window.flac"))
    original_id = by_title(catalog)["Rainy Window"].id
    parked = tmp_path / "parked.flac"
    shutil.move(piano, parked)
    assert scanner.scan(synthetic_library).missing == 1
    shutil.move(parked, piano)
    report = scanner.scan(synthetic_library)
    assert report.restored == 1
    assert by_title(catalog)["Rainy Window"].id == original_id


def test_editing_a_lyrics_sidecar_updates_the_track(catalog: Catalog,
                                                    synthetic_library: Path) -> None:
    scanner = Scanner(catalog)
    scanner.scan(synthetic_library)
    lrc = next(synthetic_library.rglob("*.lrc"))
    lrc.write_text("[00:01.00]A brand new verse\n", encoding="utf-8")
    assert scanner.scan(synthetic_library).updated == 1
    track = by_title(catalog)["Midnight Strings"]
    assert catalog.lyrics(track.id).text == "A brand new verse"
    lrc.unlink()
    assert scanner.scan(synthetic_library).updated == 1
    assert catalog.lyrics(track.id) is None


def test_interrupted_scan_resumes_without_redoing_work(tmp_path: Path,
                                                       synthetic_library: Path) -> None:
    path = tmp_path / "catalog.sqlite"

    def stop_after_three(progress: ScanProgress) -> None:
        if progress.done == 3:
            raise KeyboardInterrupt

    with Catalog(path) as catalog:
        with pytest.raises(KeyboardInterrupt):
            Scanner(catalog, on_progress=stop_after_three).scan(synthetic_library)
        assert len(catalog.tracks()) == 3
        assert catalog.jobs(kind="scan")[-1].status == "interrupted"
    with Catalog(path) as catalog:
        report = Scanner(catalog).scan(synthetic_library)
        assert (report.unchanged, report.added, report.missing) == (3, 3, 0)
        assert len(catalog.tracks()) == 6


def test_scan_of_a_killed_process_is_closed_and_resumed(catalog: Catalog,
                                                        synthetic_library: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    job_id = catalog.start_job("scan", {"root": str(synthetic_library.resolve())},
                               pid=int(dead.stdout))
    report = Scanner(catalog).scan(synthetic_library)
    assert report.resumed and catalog.job(job_id).status == "interrupted"


def test_a_live_scan_of_the_same_folder_is_refused(catalog: Catalog,
                                                   synthetic_library: Path) -> None:
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        catalog.start_job("scan", {"root": str(synthetic_library.resolve())}, pid=live.pid)
        with pytest.raises(ScanError, match="another scan is running"):
            Scanner(catalog).scan(synthetic_library)
    finally:
        live.kill()
        live.wait()


def test_corrupt_and_unsupported_files_are_recorded_and_skipped(
        catalog: Catalog, synthetic_library: Path) -> None:
    bad = synthetic_library / "bad"
    bad.mkdir()
    (bad / "garbage.mp3").write_bytes(b"not an mp3" * 500)
    (bad / "empty.flac").write_bytes(b"")
    (bad / "old.wma").write_bytes(b"\x30\x26\xb2\x75" * 10)
    truncated = make_audio(bad / "truncated.flac", seconds=3.0)
    truncated.write_bytes(truncated.read_bytes()[:20000])
    (bad / "notes.txt").write_text("not audio: ignored")

    report = Scanner(catalog, verify=True).scan(synthetic_library)
    assert (report.added, report.failed) == (6, 4)
    errors = {Path(e.path).name: e.error for e in catalog.errors()}
    assert set(errors) == {"garbage.mp3", "empty.flac", "old.wma", "truncated.flac"}
    assert "unsupported format .wma" in errors["old.wma"]
    assert "cannot decode audio" in errors["garbage.mp3"]
    assert "corrupt audio data" in errors["truncated.flac"]

    # Unchanged bad files are not retried; a repaired one is picked up and its error cleared.
    make_audio(bad / "garbage.mp3", seconds=1.0)
    (bad / "empty.flac").unlink()
    report = Scanner(catalog, verify=True).scan(synthetic_library)
    assert (report.added, report.failed) == (1, 2)
    assert {Path(e.path).name for e in catalog.errors()} == {"old.wma", "truncated.flac"}


def test_a_reader_sees_progress_while_the_scan_writes(tmp_path: Path,
                                                      synthetic_library: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    seen: list[tuple[int, int]] = []
    with Catalog(path) as writer, Catalog(path) as reader:
        def look(progress: ScanProgress) -> None:
            seen.append((progress.done, len(reader.tracks())))

        Scanner(writer, on_progress=look).scan(synthetic_library)
    assert [done for done, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert all(visible == done for done, visible in seen)


def test_missing_folder_changes_nothing(catalog: Catalog, tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="no such folder"):
        Scanner(catalog).scan(tmp_path / "nope")
    assert catalog.roots() == []


def test_unreadable_folder_is_reported_and_its_tracks_are_not_lost(tmp_path: Path) -> None:
    """Runs the real CLI, without root's permission bypass when run as root."""
    library = tmp_path / "library"
    make_audio(library / "open" / "a.flac")
    make_audio(library / "locked" / "b.flac")
    env = {**os.environ, "NEWWAVE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    drop = _drop_privileges if os.geteuid() == 0 else None

    def cli(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "newwave.cli", *args], env=env,
                                capture_output=True, text=True, preexec_fn=drop)
        assert result.returncode == 0, result.stderr
        return result

    assert "2 added" in cli("index", str(library)).stdout
    os.chmod(library / "locked", 0)
    try:
        assert "0 missing" in cli("index", str(library)).stdout
        errors = cli("library", "errors").stdout
        assert "cannot read folder" in errors and "permissions" in errors
        assert "2" in cli("library", "stats").stdout.split("tracks")[1].split()[0]
    finally:
        os.chmod(library / "locked", 0o755)


def _drop_privileges() -> None:
    """Drop root's power to bypass file permissions (CAP_DAC_OVERRIDE = 1,
    CAP_DAC_READ_SEARCH = 2) from the bounding set; the exec'd CLI runs without them."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for capability in (1, 2):
        if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")
