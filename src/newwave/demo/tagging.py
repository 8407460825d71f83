"""Writing tags, lyrics and cover art into audio files (for the demo library and tests)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import mutagen
from mutagen.flac import FLAC, Picture
from mutagen.id3 import (
    APIC,
    COMM,
    ID3,
    TALB,
    TBPM,
    TCON,
    TDRC,
    TIT2,
    TPE1,
    TPE2,
    TRCK,
    USLT,
)
from mutagen.mp4 import MP4, MP4Cover
from mutagen.wave import WAVE

from newwave.library.tags import FRONT_COVER


@dataclass(frozen=True)
class TagValues:
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    album_artist: str | None = None
    track_number: int | None = None
    year: int | None = None
    genre: str | None = None
    comment: str | None = None
    bpm: float | None = None
    lyrics: str | None = None
    cover_png: bytes | None = None


def write_tags(path: Path, values: TagValues) -> None:
    """Write ``values`` in the tag family native to the file's format."""
    audio = mutagen.File(path)
    if audio is None:
        raise ValueError(f"{path}: mutagen does not recognise this file; cannot tag it")
    if isinstance(audio, MP4):
        _write_mp4(audio, values)
    elif isinstance(audio, WAVE) or path.suffix.lower() in {".mp3", ".aif", ".aiff"}:
        if audio.tags is None:
            audio.add_tags()
        _write_id3(audio.tags, values)
    else:  # Vorbis comments: FLAC, Ogg Vorbis, Opus
        _write_vorbis(audio, values)
    audio.save()


def _write_id3(tags: ID3, v: TagValues) -> None:
    frames = [(TIT2, v.title), (TPE1, v.artist), (TALB, v.album), (TPE2, v.album_artist),
              (TCON, v.genre)]
    for frame, value in frames:
        if value:
            tags.add(frame(encoding=3, text=value))
    if v.track_number:
        tags.add(TRCK(encoding=3, text=str(v.track_number)))
    if v.year:
        tags.add(TDRC(encoding=3, text=str(v.year)))
    if v.bpm:
        tags.add(TBPM(encoding=3, text=str(round(v.bpm))))
    if v.comment:
        tags.add(COMM(encoding=3, lang="eng", desc="", text=v.comment))
    if v.lyrics:
        tags.add(USLT(encoding=3, lang="eng", desc="", text=v.lyrics))
    if v.cover_png:
        tags.add(APIC(encoding=3, mime="image/png", type=FRONT_COVER, desc="Cover",
                      data=v.cover_png))


def _write_mp4(audio: MP4, v: TagValues) -> None:
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    for key, value in [("\xa9nam", v.title), ("\xa9ART", v.artist), ("\xa9alb", v.album),
                       ("aART", v.album_artist), ("\xa9gen", v.genre), ("\xa9cmt", v.comment),
                       ("\xa9lyr", v.lyrics)]:
        if value:
            tags[key] = [value]
    if v.track_number:
        tags["trkn"] = [(v.track_number, 0)]
    if v.year:
        tags["\xa9day"] = [str(v.year)]
    if v.bpm:
        tags["tmpo"] = [round(v.bpm)]
    if v.cover_png:
        tags["covr"] = [MP4Cover(v.cover_png, imageformat=MP4Cover.FORMAT_PNG)]


def _write_vorbis(audio: mutagen.FileType, v: TagValues) -> None:
    if audio.tags is None:
        audio.add_tags()
    for key, value in [("title", v.title), ("artist", v.artist), ("album", v.album),
                       ("albumartist", v.album_artist), ("genre", v.genre),
                       ("comment", v.comment), ("lyrics", v.lyrics),
                       ("tracknumber", v.track_number), ("date", v.year),
                       ("bpm", round(v.bpm) if v.bpm else None)]:
        if value:
            audio[key] = [str(value)]
    if v.cover_png:
        picture = Picture()
        picture.type, picture.mime, picture.data = FRONT_COVER, "image/png", v.cover_png
        if isinstance(audio, FLAC):
            audio.add_picture(picture)
        else:
            audio["metadata_block_picture"] = [base64.b64encode(picture.write()).decode("ascii")]
