"""Reading tags, embedded lyrics and embedded pictures with mutagen.

Each tag family (ID3 in mp3/wav/aiff, MP4 atoms, Vorbis comments in flac/ogg/opus)
has its own reader that fills the same :class:`FileTags`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mutagen
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3
from mutagen.mp4 import MP4Cover, MP4Tags
from newwave.errors import InvalidInput

FRONT_COVER = 3  # ID3/FLAC picture type "Cover (front)"


@dataclass(frozen=True)
class EmbeddedPicture:
    data: bytes
    mime: str
    picture_type: int = FRONT_COVER


@dataclass
class FileTags:
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    album_artist: str | None = None
    track_number: int | None = None
    disc_number: int | None = None
    year: int | None = None
    genre: str | None = None
    comment: str | None = None
    bpm: float | None = None
    lyrics: str | None = None
    pictures: list[EmbeddedPicture] = field(default_factory=list)
    duration: float | None = None  # from the stream headers mutagen parsed

    def front_cover(self) -> EmbeddedPicture | None:
        """The front cover if tagged as such, else the first picture."""
        fronts = [p for p in self.pictures if p.picture_type == FRONT_COVER]
        return (fronts or self.pictures or [None])[0]


class TagReadError(InvalidInput):
    """mutagen could not parse the file's tags."""


def read_tags(path: Path) -> FileTags:
    """Read what the file's tags say. Files without tags give an empty :class:`FileTags`."""
    try:
        audio = mutagen.File(path)
    except mutagen.MutagenError as exc:
        raise TagReadError(f"{path}: unreadable tags ({exc})") from exc
    if audio is None:
        return FileTags()
    tags = FileTags(duration=getattr(audio.info, "length", None) or None)
    if isinstance(audio.tags, ID3):
        _read_id3(audio.tags, tags)
    elif isinstance(audio.tags, MP4Tags):
        _read_mp4(audio.tags, tags)
    elif audio.tags is not None and hasattr(audio.tags, "as_dict"):  # Vorbis comments
        _read_vorbis(audio.tags.as_dict(), tags)
    if isinstance(audio, FLAC):
        tags.pictures.extend(EmbeddedPicture(p.data, p.mime or _sniff_mime(p.data), p.type)
                             for p in audio.pictures)
    return tags


# -- ID3 -------------------------------------------------------------------------------

def _read_id3(id3: ID3, tags: FileTags) -> None:
    def text(frame_id: str) -> str | None:
        frame = id3.get(frame_id)
        return _join(str(v) for v in frame.text) if frame is not None else None

    tags.title, tags.artist, tags.album = text("TIT2"), text("TPE1"), text("TALB")
    tags.album_artist, tags.genre = text("TPE2"), text("TCON")
    tags.track_number, tags.disc_number = _leading_int(text("TRCK")), _leading_int(text("TPOS"))
    tags.year = _year(text("TDRC") or text("TYER"))
    tags.bpm = _float(text("TBPM"))
    tags.comment = _first_nonempty(c.text and _join(c.text) for c in id3.getall("COMM"))
    tags.lyrics = _first_nonempty(u.text for u in id3.getall("USLT"))
    tags.pictures.extend(EmbeddedPicture(p.data, p.mime or _sniff_mime(p.data), int(p.type))
                         for p in id3.getall("APIC"))


# -- MP4 -------------------------------------------------------------------------------

def _read_mp4(mp4: MP4Tags, tags: FileTags) -> None:
    def text(key: str) -> str | None:
        return _join(str(v) for v in mp4[key]) if key in mp4 else None

    def pair(key: str) -> int | None:
        values = mp4.get(key)
        return int(values[0][0]) or None if values and values[0] else None

    tags.title, tags.artist, tags.album = text("\xa9nam"), text("\xa9ART"), text("\xa9alb")
    tags.album_artist, tags.genre = text("aART"), text("\xa9gen")
    tags.comment, tags.lyrics = text("\xa9cmt"), text("\xa9lyr")
    tags.year = _year(text("\xa9day"))
    tags.track_number, tags.disc_number = pair("trkn"), pair("disk")
    tags.bpm = float(mp4["tmpo"][0]) if mp4.get("tmpo") else None
    for cover in mp4.get("covr", []):
        mime = "image/png" if cover.imageformat == MP4Cover.FORMAT_PNG else "image/jpeg"
        tags.pictures.append(EmbeddedPicture(bytes(cover), mime))


# -- Vorbis comments (FLAC, Ogg Vorbis, Opus) ---------------------------------------------

def _read_vorbis(comments: dict[str, list[str]], tags: FileTags) -> None:
    def text(*keys: str) -> str | None:
        for key in keys:
            if comments.get(key):
                return _join(comments[key])
        return None

    tags.title, tags.artist, tags.album = text("title"), text("artist"), text("album")
    tags.album_artist = text("albumartist", "album artist", "album_artist")
    tags.genre = text("genre")
    tags.comment = text("comment", "description")
    tags.lyrics = text("lyrics", "unsyncedlyrics", "unsynced lyrics")
    tags.track_number = _leading_int(text("tracknumber"))
    tags.disc_number = _leading_int(text("discnumber"))
    tags.year = _year(text("date", "year", "originaldate"))
    tags.bpm = _float(text("bpm"))
    for encoded in comments.get("metadata_block_picture", []):
        try:
            picture = Picture(base64.b64decode(encoded))
        except (ValueError, mutagen.MutagenError):
            continue  # a broken picture must not cost the track
        tags.pictures.append(EmbeddedPicture(picture.data, picture.mime or
                                             _sniff_mime(picture.data), picture.type))


# -- value helpers ---------------------------------------------------------------------

def _join(values: Any) -> str | None:
    parts = [str(v).strip() for v in values if str(v).strip()]
    return ", ".join(dict.fromkeys(parts)) or None


def _first_nonempty(values: Any) -> str | None:
    for value in values:
        if value and str(value).strip():
            return str(value).strip()
    return None


def _leading_int(value: str | None) -> int | None:
    match = re.match(r"\s*(\d+)", value or "")
    return int(match.group(1)) or None if match else None


def _year(value: str | None) -> int | None:
    match = re.search(r"\b(\d{4})\b", value or "")
    return int(match.group(1)) if match else None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


_MAGIC: list[tuple[bytes, str]] = [(b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG", "image/png"),
                                   (b"GIF8", "image/gif"), (b"RIFF", "image/webp")]


def _sniff_mime(data: bytes) -> str:
    return next((mime for magic, mime in _MAGIC if data.startswith(magic)),
                "application/octet-stream")

