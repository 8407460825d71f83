"""Free-licensed game soundtracks from Debian's archive, turned into a tagged library.

``apt-get download`` fetches the .deb files into a cache (no installation, no root
needed once the package lists exist) and ``dpkg-deb -x`` unpacks them. Warzone 2100's
``album.json`` files carry title, author, bpm and a description, which become tags.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from newwave.demo.tagging import TagValues, write_tags
from newwave.errors import Unavailable

DEMO_PACKAGES = ("warzone2100-music", "singularity-music", "asc-music")

Log = Callable[[str], None]


class DebianUnavailable(Unavailable, RuntimeError):
    """The archive cannot be used here (no apt, no network, unknown package)."""


def fetch_packages(cache_dir: Path, packages: tuple[str, ...], log: Log) -> dict[str, Path]:
    """Download and unpack each package once; return package -> unpacked folder."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DebianUnavailable(f"{tool} is not installed (not a Debian-based system)")
    debs, unpacked = cache_dir / "debs", cache_dir / "unpacked"
    debs.mkdir(parents=True, exist_ok=True)
    unpacked.mkdir(parents=True, exist_ok=True)
    result = {}
    for package in packages:
        target = unpacked / package
        if not (target / ".complete").exists():
            deb = _download(package, debs, log)
            log(f"unpacking {deb.name}")
            partial = unpacked / f".{package}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            _run(["dpkg-deb", "-x", str(deb), str(partial)], cwd=debs)
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
            (target / ".complete").touch()
        result[package] = target
    return result


def _download(package: str, debs: Path, log: Log) -> Path:
    existing = sorted(debs.glob(f"{package}_*.deb"))
    if existing:
        return existing[-1]
    log(f"downloading {package} from Debian's archive")
    try:
        _run(["apt-get", "download", package], cwd=debs)
    except DebianUnavailable:
        if os.geteuid() != 0:
            raise
        log("package lists look stale; running apt-get update once")
        _run(["apt-get", "update", "-qq"], cwd=debs)
        _run(["apt-get", "download", package], cwd=debs)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        raise DebianUnavailable(f"apt-get download {package} produced no .deb file")
    return found[-1]


def _run(command: list[str], cwd: Path) -> None:
    try:
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True, timeout=900)
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()
        raise DebianUnavailable(f"{' '.join(command)} failed: {detail[-1] if detail else exc}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DebianUnavailable(f"{' '.join(command)} failed: {exc}") from exc


def build_debian_library(library: Path, cache_dir: Path, log: Log,
                         packages: tuple[str, ...] = DEMO_PACKAGES) -> list[Path]:
    """Fill ``library`` with the packages' music, tagged; return the audio files written."""
    unpacked = fetch_packages(cache_dir, packages, log)
    importers = {"warzone2100-music": _import_warzone, "singularity-music": _import_singularity,
                 "asc-music": _import_asc}
    written: list[Path] = []
    for package, folder in unpacked.items():
        written += importers[package](folder, library)
    return written


def _import_warzone(unpacked: Path, library: Path) -> list[Path]:
    written = []
    for album_json in sorted(unpacked.glob("usr/share/games/warzone2100/music/albums/*/album.json")):
        album = json.loads(album_json.read_text(encoding="utf-8"))
        target_dir = library / "Warzone 2100" / _safe(album["title"])
        target_dir.mkdir(parents=True, exist_ok=True)
        cover = album_json.parent / album.get("album_cover_filename", "albumcover.png")
        if cover.exists():
            shutil.copyfile(cover, target_dir / f"cover{cover.suffix.lower()}")
        for number, track in enumerate(album["tracks"], start=1):
            source = album_json.parent / track["filename"]
            target = target_dir / f"{number:02d} {_safe(track['title'])}{source.suffix}"
            shutil.copyfile(source, target)
            write_tags(target, TagValues(
                title=track["title"], artist=track.get("author") or album.get("author"),
                album=album["title"], album_artist=album.get("author"), track_number=number,
                year=int(album["date"][:4]) if album.get("date") else None,
                genre="Soundtrack", bpm=track.get("bpm"), comment=album.get("description")))
            written.append(target)
    return written


def _import_singularity(unpacked: Path, library: Path) -> list[Path]:
    """Already tagged (artist, album, date); only the genre is added."""
    written = []
    for source in sorted(unpacked.glob("usr/share/games/singularity/music/**/*.ogg")):
        target_dir = library / "Endgame Singularity"
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / source.name
        shutil.copyfile(source, target)
        write_tags(target, TagValues(genre="Soundtrack"))
        written.append(target)
    return written


def _import_asc(unpacked: Path, library: Path) -> list[Path]:
    """Three untagged mp3s by Michael Kievernagel (per the package's copyright file)."""
    target_dir = library / "Advanced Strategic Command"
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for number, source in enumerate(sorted(unpacked.glob("usr/share/games/asc/music/*.mp3")), 1):
        title = source.stem.replace("_", " ").title()
        target = target_dir / f"{number:02d} {title}.mp3"
        shutil.copyfile(source, target)
        write_tags(target, TagValues(title=title, artist="Michael Kievernagel",
                                     album="Advanced Strategic Command", track_number=number,
                                     year=2002, genre="Soundtrack"))
        written.append(target)
    return written


def _safe(name: str) -> str:
    """A file-name-safe version of a title."""
    return "".join("-" if c in '/\\:*?"<>|' else c for c in name).strip() or "untitled"
