"""Files that sit beside the audio: lyrics sidecars and folder cover images."""

from __future__ import annotations

import re
from pathlib import Path

from newwave.catalog.models import Lyrics

LYRICS_SIDECARS = (".lrc", ".txt")  # in order of preference
# Folder images in order of preference (lower-case stem); any of these extensions.
COVER_STEMS = ("cover", "folder", "front", "album", "albumart", "albumcover")
COVER_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")

_LRC_TIMESTAMP = re.compile(r"\[\d{1,3}:\d{1,2}(?:[.:]\d{1,3})?\]")
_LRC_WORD_TIMESTAMP = re.compile(r"<\d{1,3}:\d{1,2}(?:[.:]\d{1,3})?>")
_LRC_ID_TAG = re.compile(r"^\s*\[[a-zA-Z#]+:[^\]]*\]\s*$")  # [ar:Artist], [offset:+100], ...


def lyrics_sidecar(audio: Path, siblings: dict[str, Path]) -> Path | None:
    """The lyrics file named like ``audio`` (``song.lrc``, ``song.txt``), if any.

    ``siblings`` maps lower-cased file names of the folder to their paths, so case
    differences (``Song.LRC``) still match.
    """
    stem = audio.stem.lower()
    for ext in LYRICS_SIDECARS:
        if (found := siblings.get(stem + ext)) is not None:
            return found
    return None


def folder_cover(siblings: dict[str, Path]) -> Path | None:
    for stem in COVER_STEMS:
        for ext in COVER_EXTENSIONS:
            if (found := siblings.get(stem + ext)) is not None:
                return found
    return None


def read_lyrics_file(path: Path) -> Lyrics | None:
    """Lyrics from a ``.lrc`` (timestamps and ID tags stripped) or ``.txt`` file."""
    text = decode_text(path.read_bytes())
    if path.suffix.lower() == ".lrc":
        text = strip_lrc(text)
        return Lyrics("lrc", text, synced=True) if text else None
    text = normalise_lyrics(text)
    return Lyrics("txt", text) if text else None


def strip_lrc(text: str) -> str:
    """Plain lyrics from LRC: drop ``[mm:ss.xx]`` and ``<mm:ss.xx>`` stamps and ID tags."""
    lines = []
    for line in text.splitlines():
        if _LRC_ID_TAG.match(line) and not _LRC_TIMESTAMP.match(line.strip()):
            continue
        lines.append(_LRC_WORD_TIMESTAMP.sub("", _LRC_TIMESTAMP.sub("", line)).strip())
    return normalise_lyrics("\n".join(lines))


def normalise_lyrics(text: str) -> str:
    """Unix newlines, trimmed lines, at most one blank line between stanzas."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def decode_text(data: bytes) -> str:
    """Text of a sidecar in UTF-8 (with or without BOM) or UTF-16 (BOM), else cp1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")
