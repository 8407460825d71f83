"""Typed request and response models of the HTTP API (they are the OpenAPI schema)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, Field

from newwave.catalog import Job, Track
from newwave.catalog.models import TrackDescriptors
from newwave.search import Hit, SearchResult


class DescriptorsOut(BaseModel):
    """Musical descriptors measured from the track's audio when it was indexed."""

    bpm: float | None = Field(description="Tempo in beats per minute (null: no steady pulse).")
    bpm_confidence: float | None = Field(description="0..1: how regular the pulse is.")
    key: str | None = Field(description='Tonic, e.g. "A", "F#", "Bb" (null: no key).')
    mode: Literal["major", "minor"] | None
    key_confidence: float | None = Field(description="0..1: how well the key profile fits.")
    loudness_lufs: float | None = Field(
        description="Integrated loudness (ITU-R BS.1770) of the mono downmix, in LUFS.")
    analyser: str = Field(description='What measured them: "librosa" or "essentia".')
    analyser_version: str

    @classmethod
    def of(cls, descriptors: TrackDescriptors | None) -> DescriptorsOut | None:
        if descriptors is None:
            return None
        return cls(bpm=descriptors.bpm, bpm_confidence=descriptors.bpm_confidence,
                   key=descriptors.key, mode=descriptors.mode,
                   key_confidence=descriptors.key_confidence,
                   loudness_lufs=descriptors.loudness_lufs, analyser=descriptors.analyser,
                   analyser_version=descriptors.analyser_version)


class TrackOut(BaseModel):
    id: int
    title: str
    artist: str | None
    album: str | None
    album_artist: str | None
    track_number: int | None
    year: int | None
    genre: str | None
    duration: float | None
    format: str
    has_cover: bool
    audio_url: str
    cover_url: str | None
    descriptors: DescriptorsOut | None = Field(
        default=None, description="Tempo, key, loudness (null: not analysed yet).")

    @classmethod
    def of(cls, track: Track, descriptors: TrackDescriptors | None = None) -> TrackOut:
        return cls(id=track.id, title=track.title, artist=track.artist, album=track.album,
                   album_artist=track.album_artist, track_number=track.track_number,
                   year=track.year, genre=track.genre, duration=track.duration,
                   format=track.format, has_cover=track.cover_id is not None,
                   audio_url=f"/tracks/{track.id}/audio",
                   cover_url=f"/tracks/{track.id}/cover" if track.cover_id else None,
                   descriptors=DescriptorsOut.of(descriptors))


class TrackDetail(TrackOut):
    lyrics: str | None = None
    comment: str | None = None
    bpm: float | None = Field(default=None, description="The BPM the file's tags declare "
                              "(the measured tempo is in descriptors).")


class HitOut(BaseModel):
    type: Literal["hit"] = "hit"
    rank: int
    score: float
    scores: dict[str, float] = Field(description="per signal: sound, lyrics, similarity, "
                                                 "fusion, rrf")
    why: str
    track: TrackOut

    @classmethod
    def of(cls, hit: Hit, descriptors: TrackDescriptors | None = None) -> HitOut:
        return cls(rank=hit.rank, score=hit.score, scores=hit.scores, why=hit.why,
                   track=TrackOut.of(hit.track, descriptors))


class QueryLine(BaseModel):
    """First NDJSON line: what was asked."""

    type: Literal["query"] = "query"
    mode: str
    query: str | None
    limit: int
    offset: int


class SummaryLine(BaseModel):
    """Last NDJSON line: how it went."""

    type: Literal["summary"] = "summary"
    returned: int
    candidates: int
    notes: list[str]
    elapsed_ms: float


class SearchOut(BaseModel):
    mode: str
    query: str | None
    hits: list[HitOut]
    candidates: int
    notes: list[str]
    elapsed_ms: float

    @classmethod
    def of(cls, result: SearchResult,
           descriptors: Mapping[int, TrackDescriptors] | None = None) -> SearchOut:
        """``descriptors``: track id -> descriptors of the hits' tracks."""
        found = descriptors or {}
        return cls(mode=result.mode, query=result.query,
                   hits=[HitOut.of(h, found.get(h.track.id)) for h in result.hits],
                   candidates=result.candidates, notes=result.notes,
                   elapsed_ms=result.elapsed_ms)


class FeedbackIn(BaseModel):
    track_id: int = Field(ge=1, le=2**63 - 1)  # SQLite's integer range
    kind: Literal["like", "dislike", "skip", "play"]
    query: str | None = Field(default=None, max_length=500)


class FeedbackOut(BaseModel):
    id: int
    track_id: int
    kind: str


class JobOut(BaseModel):
    id: int
    kind: str
    status: str
    done: int
    total: int | None
    message: str | None
    error: str | None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(id=job.id, kind=job.kind, status=job.status, done=job.done, total=job.total,
                   message=job.message, error=job.error)


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    tracks: int


class StatsOut(BaseModel):
    tracks: int
    artists: int
    albums: int
    with_lyrics: int
    with_cover: int
    missing: int
    errors: int
    total_duration: float
    formats: dict[str, int]
    text_model: str
    audio_model: str
    fusion_model: str | None


class ErrorOut(BaseModel):
    error: str
