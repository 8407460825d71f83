"""Plain records that cross the catalog's door. Field names match the SQL columns."""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

from newwave.errors import Conflict, InvalidInput

LyricsSource = Literal["embedded", "lrc", "txt"]
CoverSource = Literal["embedded", "folder"]
TagsSource = Literal["tags", "filename", "mixed"]
JobStatus = Literal["running", "done", "failed", "interrupted"]
VectorKind = Literal["audio-text", "audio", "lyrics"]
FeedbackKind = Literal["like", "dislike", "skip", "play"]
KeyMode = Literal["major", "minor"]

# How the catalog spells each pitch class (0 = C), whatever spelling a key came in.
KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_NATURALS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_ACCIDENTALS = {"#": 1, "♯": 1, "sharp": 1, "b": -1, "♭": -1, "flat": -1}
_MODES: dict[str, KeyMode] = {"m": "minor", "min": "minor", "minor": "minor",
                              "maj": "major", "major": "major"}
# What ``parse_key`` accepts, as a regular expression the API's schema publishes too (so
# letter case is spelled out: JSON Schema patterns have no ignore-case flag).
KEY_PATTERN = (r"^ *([A-Ga-g])[ -]*(#|♯|[Bb]|♭|[Ss][Hh][Aa][Rr][Pp]|[Ff][Ll][Aa][Tt])? *"
               r"([Mm]([Ii][Nn]([Oo][Rr])?)?|[Mm][Aa][Jj]([Oo][Rr])?)? *$")


class VectorSpaceMismatch(Conflict, ValueError):
    """Vectors of one model were about to be stored or compared with another's."""


@dataclass(frozen=True, kw_only=True)
class TrackRecord:
    """What a scan learns about one audio file."""

    path: str
    root_id: int | None
    content_hash: str
    size: int
    mtime_ns: int
    sidecar_sig: str = ""
    format: str
    codec: str | None = None
    duration: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    bitrate: int | None = None
    title: str
    artist: str | None = None
    album: str | None = None
    album_artist: str | None = None
    track_number: int | None = None
    disc_number: int | None = None
    year: int | None = None
    genre: str | None = None
    comment: str | None = None
    bpm: float | None = None
    tags_source: TagsSource = "tags"
    cover_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class Track(TrackRecord):
    """A catalogued track: the scan record plus its stable identity."""

    id: int
    added_at: float
    updated_at: float
    missing_since: float | None = None


@dataclass(frozen=True)
class Lyrics:
    source: LyricsSource
    text: str
    synced: bool = False


@dataclass(frozen=True, kw_only=True)
class CoverImage:
    sha256: str
    source: CoverSource
    mime: str
    width: int | None = None
    height: int | None = None
    data: bytes | None = None  # embedded art
    path: str | None = None  # folder art


@dataclass(frozen=True)
class ScanErrorRow:
    path: str
    error: str
    size: int | None
    mtime_ns: int | None
    first_seen: float
    last_seen: float


@dataclass(frozen=True, kw_only=True)
class Job:
    id: int
    kind: str
    status: JobStatus
    params: dict[str, Any]
    done: int
    total: int | None
    message: str | None
    error: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    pid: int | None = None  # the process running it
    owner: str | None = None  # "host/start time" of that process (pid reuse guard)


@dataclass(frozen=True)
class CatalogStats:
    tracks: int
    missing: int
    with_lyrics: int
    with_cover: int
    artists: int
    albums: int
    total_duration: float
    errors: int
    roots: list[str] = field(default_factory=list)
    formats: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class VectorSpace:
    id: int
    kind: VectorKind
    model: str
    version: str
    dim: int
    created_at: float


@dataclass(frozen=True)
class StoredVectors:
    """Vectors of one space: row i belongs to ``track_ids[i]`` (window ``chunks[i]``)."""

    space: VectorSpace
    track_ids: np.ndarray
    chunks: np.ndarray
    matrix: np.ndarray  # [rows, dim] float32


@dataclass(frozen=True, kw_only=True)
class TrackDescriptors:
    """Musical descriptors measured from a track's audio (``newwave.audio.descriptors``
    says how). None: undefined for this audio (silence has no key; no pulse, no tempo).
    Confidences are 0..1 on the scale of the analyser that made them."""

    track_id: int
    bpm: float | None = None
    bpm_confidence: float | None = None
    key: str | None = None  # the tonic, spelled as in KEY_NAMES
    mode: KeyMode | None = None
    key_confidence: float | None = None
    loudness_lufs: float | None = None  # BS.1770 integrated loudness of the mono downmix
    analyser: str  # "librosa" or "essentia"
    analyser_version: str

    @property
    def key_name(self) -> str | None:
        """"A minor", or None."""
        return f"{self.key} {self.mode}" if self.key else None


def parse_key(text: str) -> tuple[str, KeyMode | None]:
    """(tonic as spelled in ``KEY_NAMES``, mode or None) of a key such as "A minor", "Am",
    "F# major", "C#m", "Bb", "e flat minor" (enharmonics normalised: "Db" is "C#").
    Raises :class:`InvalidInput` for anything else."""
    match = re.fullmatch(KEY_PATTERN, text.strip())
    if match is None:
        raise InvalidInput(f"{text!r} is not a key; give a tonic A-G with an optional # or b "
                           "and an optional mode, e.g. 'A minor', 'Am', 'F# major', 'Bb'")
    tonic, accidental, mode = match.group(1, 2, 3)
    pitch = _NATURALS[tonic.lower()] + _ACCIDENTALS.get((accidental or "").lower(), 0)
    return KEY_NAMES[pitch % 12], _MODES[mode.lower()] if mode else None


@dataclass(frozen=True)
class FilterOption:
    """One ``TrackFilter`` field as a front end offers it."""

    name: str
    type: Any  # the field's type, e.g. ``int | None``
    help: str
    ge: float | None  # bounds: no out-of-range number reaches SQLite
    le: float | None
    flag: str | None  # the CLI's flag pair, for booleans
    pattern: str | None  # a regular expression text must match (checked again by the field)


def _condition(help: str, *, ge: float | None = None, le: float | None = None,
               flag: str | None = None, pattern: str | None = None) -> Any:
    """A filter field. Its metadata is the single definition of the option that the CLI
    (``--artist``...) and the API (``?artist=``...) build from: help text, bounds (so
    no out-of-range number reaches SQLite), for booleans the CLI flag pair, and for text a
    pattern that the API's schema publishes."""
    return field(default=None, metadata={"help": help, "ge": ge, "le": le, "flag": flag,
                                         "pattern": pattern})


@dataclass(frozen=True)
class TrackFilter:
    """Conditions on tracks; unset fields do not filter. Text fields match
    case-insensitively anywhere in the value (artist also matches the album artist)."""

    artist: str | None = _condition("Artist or album artist contains this.")
    album: str | None = _condition("Album contains this.")
    genre: str | None = _condition("Genre contains this.")
    year_min: int | None = _condition("Released in or after this year.", ge=0, le=9999)
    year_max: int | None = _condition("Released in or before this year.", ge=0, le=9999)
    min_duration: float | None = _condition("At least this many seconds long.", ge=0, le=1e7)
    max_duration: float | None = _condition("At most this many seconds long.", ge=0, le=1e7)
    has_lyrics: bool | None = _condition("Only tracks with (or without) lyrics.",
                                         flag="--has-lyrics/--no-lyrics")
    bpm_min: float | None = _condition("Measured tempo at least this many BPM.", ge=0, le=1000)
    bpm_max: float | None = _condition("Measured tempo at most this many BPM.", ge=0, le=1000)
    key: str | None = _condition("Measured key, e.g. 'A minor', 'Am', 'F#', 'Bb major' "
                                 "(no mode: major or minor).", pattern=KEY_PATTERN)

    def __post_init__(self) -> None:
        if self.key:
            parse_key(self.key)  # a nonsense key is refused here, before any search

    @classmethod
    def options(cls) -> list[FilterOption]:
        """Each field as the option the CLI and the API offer for it."""
        hints = typing.get_type_hints(cls)
        return [FilterOption(f.name, hints[f.name], **f.metadata) for f in fields(cls)]

    @property
    def active(self) -> bool:
        return any(value is not None and value != "" for value in vars(self).values())
