"""Guessing title, artist, album and track number from a file's name and folder."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_TRACK_PREFIX = re.compile(r"^\s*(?:(?:cd|disc)\s*\d+\s*[-._ ]\s*)?(\d{1,3})(?:\s*[-._)]\s*|\s+)(?=\S)",
                           re.IGNORECASE)
_ARTIST_TITLE = re.compile(r"^(?P<artist>.+?)\s+[-\u2013\u2014]\s+(?P<title>.+)$")


@dataclass(frozen=True)
class NameGuess:
    title: str
    artist: str | None
    album: str | None
    track_number: int | None


def guess_from_path(path: Path, root: Path) -> NameGuess:
    """``01 - Artist - Title.mp3`` -> track 1, Artist, Title; album from the parent folder
    (unless the file sits directly in the library root)."""
    stem = re.sub(r"[_]+", " ", path.stem).strip() or path.name
    track_number = None
    if (match := _TRACK_PREFIX.match(stem)) and match.end() < len(stem):
        track_number = int(match.group(1)) or None
        stem = stem[match.end():].strip()
    artist = None
    if match := _ARTIST_TITLE.match(stem):
        artist, stem = match.group("artist").strip(), match.group("title").strip()
    album = path.parent.name if path.parent != root else None
    return NameGuess(title=stem, artist=artist, album=album, track_number=track_number)
