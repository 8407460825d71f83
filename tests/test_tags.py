from __future__ import annotations

from pathlib import Path

import pytest

from conftest import make_audio
from newwave.audio.encode import WRITABLE_EXTENSIONS
from newwave.demo.synth import cover_png
from newwave.demo.tagging import TagValues, write_tags
from newwave.library.naming import guess_from_path
from newwave.library.sidecars import decode_text, read_lyrics_file, strip_lrc
from newwave.library.tags import read_tags

FULL = TagValues(title="Señal", artist="Ana Pérez", album="Ríos", album_artist="Various",
                 track_number=7, year=2019, genre="Folk", comment="quiet guitar", bpm=92,
                 lyrics="line one\nline two", cover_png=cover_png(1))


@pytest.mark.parametrize("ext", sorted(WRITABLE_EXTENSIONS))
def test_every_format_round_trips_tags_lyrics_and_cover(tmp_path: Path, ext: str) -> None:
    path = make_audio(tmp_path / f"song{ext}")
    write_tags(path, FULL)
    tags = read_tags(path)
    assert (tags.title, tags.artist, tags.album) == ("Señal", "Ana Pérez", "Ríos")
    assert (tags.album_artist, tags.track_number, tags.year) == ("Various", 7, 2019)
    assert (tags.genre, tags.comment, tags.bpm) == ("Folk", "quiet guitar", 92)
    assert tags.lyrics == "line one\nline two"
    cover = tags.front_cover()
    assert cover is not None and cover.data == FULL.cover_png and cover.mime == "image/png"
    assert tags.duration == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize("ext", sorted(WRITABLE_EXTENSIONS))
def test_untagged_files_read_as_empty(tmp_path: Path, ext: str) -> None:
    tags = read_tags(make_audio(tmp_path / f"bare{ext}"))
    assert tags.title is None and tags.artist is None and tags.pictures == []


def test_vorbis_unsyncedlyrics_key(tmp_path: Path) -> None:
    import mutagen

    path = make_audio(tmp_path / "a.flac")
    audio = mutagen.File(path)
    audio["UNSYNCEDLYRICS"] = ["from another tagger"]
    audio["TRACKNUMBER"] = ["3/12"]
    audio["DATE"] = ["2001-05-04"]
    audio.save()
    tags = read_tags(path)
    assert (tags.lyrics, tags.track_number, tags.year) == ("from another tagger", 3, 2001)


@pytest.mark.parametrize(("name", "title", "artist", "number"), [
    ("01 - Artist Name - Song Title.mp3", "Song Title", "Artist Name", 1),
    ("07. Song Title.flac", "Song Title", None, 7),
    ("Artist - Title.ogg", "Title", "Artist", None),
    ("just_a_title.opus", "just a title", None, None),
    ("12 Another Song.m4a", "Another Song", None, 12),
    ("2049.wav", "2049", None, None),
])
def test_guess_from_file_name(tmp_path: Path, name: str, title: str, artist: str | None,
                              number: int | None) -> None:
    guess = guess_from_path(tmp_path / "Album Folder" / name, tmp_path)
    assert (guess.title, guess.artist, guess.track_number) == (title, artist, number)
    assert guess.album == "Album Folder"
    assert guess_from_path(tmp_path / name, tmp_path).album is None


def test_strip_lrc_timestamps_and_id_tags() -> None:
    lrc = ("[ar:Someone]\n[ti:Song]\n[offset:+200]\n[00:01.00]First line\n"
           "[00:05.50][01:05.50]Chorus <00:06.00>word <00:06.40>by word\n\n\n\n[00:09.00]\n"
           "[00:10.00]Last line\n")
    assert strip_lrc(lrc) == "First line\nChorus word by word\n\nLast line"


def test_sidecar_encodings(tmp_path: Path) -> None:
    assert decode_text("héllo".encode("utf-8-sig")) == "héllo"
    assert decode_text("héllo".encode("utf-16")) == "héllo"
    assert decode_text("héllo".encode("cp1252")) == "héllo"
    txt = tmp_path / "song.txt"
    txt.write_bytes(b"  verse\r\n\r\n\r\nchorus  \r\n")
    lyrics = read_lyrics_file(txt)
    assert lyrics is not None and (lyrics.source, lyrics.text, lyrics.synced) == \
        ("txt", "verse\n\nchorus", False)
    (tmp_path / "blank.lrc").write_text("[ar:x]\n[00:01.00]\n")
    assert read_lyrics_file(tmp_path / "blank.lrc") is None
