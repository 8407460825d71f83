from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_audio
from newwave.catalog import Catalog
from newwave.demo import build_demo_library
from newwave.demo.debian import _import_warzone
from newwave.demo.synth import cover_png
from newwave.library import Scanner
from newwave.library.tags import read_tags


def run_cli(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "NEWWAVE_DATA_DIR": str(tmp_path / "data"),
           "NEWWAVE_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-m", "newwave.cli", *args], env=env,
                            capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


SCAN_WORDS = ("added", "updated", "moved", "restored", "unchanged", "missing", "failed")


def scan_counts(out: str) -> dict[str, int]:
    """The scan summary's numbers, whole ("10 missing" is not "0 missing")."""
    found = dict((word, int(n)) for n, word in
                 re.findall(rf"(?<![\d.])(\d+) ({'|'.join(SCAN_WORDS)})\b", out))
    assert set(found) == set(SCAN_WORDS), out
    return found


def stat(out: str, name: str) -> str:
    """One row of `library stats`: its value, exactly."""
    match = re.search(rf"^\s*{name}\s{{2,}}(\S.*?)\s*$", out, re.MULTILINE)
    assert match, out
    return match.group(1)


def test_cli_index_list_stats_and_errors(tmp_path: Path, synthetic_library: Path) -> None:
    (synthetic_library / "broken.ogg").write_bytes(b"OggS but not really")
    out = run_cli(tmp_path, "index", str(synthetic_library)).stdout
    assert scan_counts(out) == dict.fromkeys(SCAN_WORDS, 0) | {"added": 6, "failed": 1}
    assert "7 audio files" in out and "newwave library errors" in out
    listing = run_cli(tmp_path, "library", "list").stdout
    assert "Rainy Window" in listing and "Mira Vale" in listing
    stats = run_cli(tmp_path, "library", "stats").stdout
    # 6 tracks by 4 artists on 4 albums; 3 with lyrics, all 6 with art (2 from a folder)
    assert [stat(stats, n) for n in ("tracks", "artists", "albums", "with lyrics",
                                     "with cover art", "missing files", "scan errors")] == \
        ["6", "4", "4", "3", "6", "0", "1"]
    assert stat(stats, "library folders") == str(synthetic_library)
    assert "broken.ogg" in run_cli(tmp_path, "library", "errors").stdout
    again = run_cli(tmp_path, "index", str(synthetic_library)).stdout
    # The broken file failed before and is unchanged: counted as failed, not retried.
    assert scan_counts(again) == dict.fromkeys(SCAN_WORDS, 0) | {"unchanged": 6, "failed": 1}


def test_cli_reports_user_errors_without_traceback(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "index", str(tmp_path / "absent"), check=False)
    assert result.returncode == 1
    assert "no such folder" in result.stderr and "Traceback" not in result.stderr
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("data_dir = [")
    result = run_cli(tmp_path, "--config", str(bad_config), "library", "stats", check=False)
    assert result.returncode == 1 and "not valid TOML" in result.stderr


def test_data_dir_from_config_file(tmp_path: Path, synthetic_library: Path) -> None:
    config = tmp_path / "newwave.toml"
    config.write_text(f'data_dir = "{tmp_path / "from-toml"}"\n')
    env = {**os.environ, "NEWWAVE_CONFIG": str(config), "COLUMNS": "200"}
    env.pop("NEWWAVE_DATA_DIR", None)
    subprocess.run([sys.executable, "-m", "newwave.cli", "index", str(synthetic_library)],
                   env=env, check=True, capture_output=True)
    assert (tmp_path / "from-toml" / "catalog.sqlite").exists()


def test_synthetic_demo_builds_once_and_indexes(tmp_path: Path) -> None:
    out = run_cli(tmp_path, "demo", "--source", "synthetic").stdout
    assert "Demo library (synthetic)" in out
    assert scan_counts(out) == dict.fromkeys(SCAN_WORDS, 0) | {"added": 6}
    again = run_cli(tmp_path, "demo", "--source", "synthetic").stdout
    assert "already built" in again
    assert scan_counts(again) == dict.fromkeys(SCAN_WORDS, 0) | {"unchanged": 6}


def test_warzone_album_json_becomes_tags(tmp_path: Path) -> None:
    """The importer on a tree laid out like the unpacked warzone2100-music package."""
    album_dir = tmp_path / "unpacked/usr/share/games/warzone2100/music/albums/original"
    make_audio(album_dir / "track1.opus", seconds=1.0)
    make_audio(album_dir / "track2.opus", seconds=1.0)
    (album_dir / "albumcover.png").write_bytes(cover_png(3))
    (album_dir / "album.json").write_text(json.dumps({
        "title": "Warzone 2100 OST", "author": "Martin Severn", "date": "1999",
        "description": "The original soundtrack.", "album_cover_filename": "albumcover.png",
        "tracks": [{"filename": "track1.opus", "title": "Track 1", "author": "Martin Severn",
                    "bpm": 80},
                   {"filename": "track2.opus", "title": "Track 2: Dawn", "bpm": 95}]}))
    written = _import_warzone(tmp_path / "unpacked", tmp_path / "library")
    assert [p.name for p in written] == ["01 Track 1.opus", "02 Track 2- Dawn.opus"]
    tags = read_tags(written[1])
    assert (tags.title, tags.artist, tags.album, tags.year, tags.bpm, tags.track_number) == \
        ("Track 2: Dawn", "Martin Severn", "Warzone 2100 OST", 1999, 95, 2)
    assert tags.comment == "The original soundtrack."
    assert (written[0].parent / "cover.png").exists()


def test_demo_falls_back_to_synthetic_when_debian_is_unavailable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))  # no apt-get, no dpkg-deb
    lines: list[str] = []
    built = build_demo_library(tmp_path / "demo", tmp_path / "cache", log=lines.append)
    assert built.source == "synthetic"
    assert any("apt-get is not installed" in line for line in lines)
    assert len(list((tmp_path / "demo").rglob("*.flac"))) == 1


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs Debian's apt-get")
def test_debian_demo_library_is_real_tagged_music(tmp_path: Path) -> None:
    built = build_demo_library(tmp_path / "demo", tmp_path / "cache", source="debian",
                               log=lambda _: None)
    with Catalog(tmp_path / "catalog.sqlite") as catalog:
        report = Scanner(catalog).scan(built.folder)
        assert report.added >= 40 and report.failed == 0
        albums = {t.album for t in catalog.tracks()}
        assert "Warzone 2100 OST" in albums
        assert catalog.stats().total_duration > 3 * 3600
