"""The search engine: plans a query over the index set, fuses signals and explains hits.

It owns no index and no model loading: the index set (``newwave.index``) owns the FAISS
indexes, the query encoder (``newwave.models.query``) turns text into vectors, and the
application service (``newwave.service``) wires them.

Modes:
- ``audio``: text -> tracks by sound, in the audio–text space (musicnn's tag space
  offline, CLAP's joint space when configured), read as concepts that must each count
  and scored with the tracks' descriptors (``newwave.search.sound``).
- ``lyrics``: text -> tracks by what their lyrics say; long lyrics are several vectors
  and a track scores by its best window (max-pooling).
- ``combined``: both. The top ``candidates`` of each signal are gathered; with a
  trained fusion model, their intersection is re-ranked by it (a track needs to be in
  the lists of the signals it has: one without lyrics qualifies on sound; the union
  when the intersection is smaller than the page asked for); without one, reciprocal-rank fusion
  over the union: ``1 / (60 + rank)`` summed over the signals, divided by the number of
  signals that apply to the track, so tracks without lyrics compete on sound alone
  instead of losing for lacking a lyrics rank. When the query's words are in some
  tracks' tags (genre, decade...), the tag match joins as a third signal.
- ``similar`` (track -> tracks) and ``by_audio`` (a recorded snippet -> tracks) search
  the audio embedding space.
Every mode takes a :class:`TrackFilter` and ``offset``/``limit`` paging, and every hit
carries its per-signal scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from newwave.catalog import Catalog, Track, TrackFilter, VectorKind
from newwave.errors import InvalidInput, NotFound
from newwave.index import IndexSet, track_ids_of
from newwave.models.base import QueryVector
from newwave.models.query import QueryEncoder
from newwave.search.metadata import MetadataMatcher
from newwave.search.rank_fusion import Ranking, reciprocal_rank_fusion
from newwave.search.sound import SoundOptions, SoundRanking, SoundScorer

if TYPE_CHECKING:
    from newwave.models.fusion import FusionModel

Mode = Literal["audio", "lyrics", "combined"]
MODES: tuple[Mode, ...] = ("audio", "lyrics", "combined")


class SearchError(InvalidInput, ValueError):
    """A search that cannot run as asked; the message says why and what to do."""


class TrackNotFound(NotFound, SearchError):
    """The track a search starts from is not in the library."""


@dataclass(frozen=True)
class Hit:
    track: Track
    rank: int  # 1-based, over the whole ranking (not the page)
    score: float  # what the ranking used
    scores: dict[str, float]  # per signal: "sound", "lyrics", "similarity", "fusion", "rrf"
    why: str


@dataclass(frozen=True)
class SearchResult:
    mode: str
    query: str | None
    hits: list[Hit]
    candidates: int  # tracks that were ranked (before paging)
    notes: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0


class SearchEngine:
    def __init__(self, catalog: Catalog, indexes: IndexSet, queries: QueryEncoder, *,
                 fusion: Callable[[], FusionModel | None] = lambda: None,
                 candidates: int = 200, sound: SoundOptions = SoundOptions()) -> None:
        self.catalog = catalog
        self.indexes = indexes
        self.queries = queries
        self.fusion = fusion  # the trained fusion model, loaded when first needed
        self.candidates = candidates
        self.sound = SoundScorer(lambda: queries.sound_model, queries.encode_sounds,
                                 self._sound_library, lambda: catalog.descriptors(), sound)
        self.metadata = MetadataMatcher(catalog, lambda: indexes.generation)

    def with_sound_options(self, options: SoundOptions) -> SearchEngine:
        """The same engine scoring sound with other options (for measuring each part)."""
        engine = SearchEngine(self.catalog, self.indexes, self.queries, fusion=self.fusion,
                              candidates=self.candidates)
        engine.sound = self.sound.with_options(options)
        engine.metadata = self.metadata
        return engine

    def _sound_library(self) -> tuple[np.ndarray, np.ndarray]:
        library = self.indexes.matrix("audio-text")
        return library.track_ids, library.matrix

    # -- text queries ----------------------------------------------------------------

    def search(self, query: str, mode: Mode = "combined", *, limit: int = 10, offset: int = 0,
               filters: TrackFilter | None = None) -> SearchResult:
        started = time.perf_counter()
        query = query.strip()
        if not query:
            raise SearchError("the query is empty; describe the music you want")
        if mode not in MODES:
            raise SearchError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        _check_page(limit, offset)
        # Concurrent searches share model calls inside the encoder (micro-batching).
        encoded = self.queries.encode(query, meaning=mode != "audio", sound=mode != "lyrics")
        allowed = self._allowed(filters)
        want = max(offset + limit, self.candidates if mode == "combined" else 0)
        notes: list[str] = []
        rankings: dict[str, Ranking] = {}
        sound_ranking: SoundRanking | None = None
        meaning = encoded.meaning
        if meaning is not None:
            rankings["lyrics"] = self._ranked("lyrics", meaning, want, allowed)
        if mode != "lyrics":
            sound_ranking = self.sound.rank(query, allowed)
            notes += [f"sound: {note}" for note in sound_ranking.notes]
            rankings["sound"] = sound_ranking.ranking
        if mode == "combined":
            rankings["tags"] = self.metadata.rank(query, allowed)
            ranking, fused_by = self._fuse(rankings, encoded.sound, sound_ranking, meaning,
                                           offset + limit, notes)
        else:
            fused_by = "sound" if mode == "audio" else "lyrics"
            ranking = rankings[fused_by]
        page = ranking[offset:offset + limit]
        signals = self._signal_scores([t for t, _ in page], sound_ranking, meaning)
        hits = self._hits(page, offset, fused_by, signals,
                          sound_ranking.explain if sound_ranking else _no_note)
        return SearchResult(mode, query, hits, len(ranking), notes, _ms(started))

    def _fuse(self, rankings: dict[str, Ranking], sound: QueryVector | None,
              sound_ranking: SoundRanking | None, meaning: np.ndarray, needed: int,
              notes: list[str]) -> tuple[Ranking, str]:
        by_sound = rankings["sound"][:self.candidates]
        by_lyrics = rankings["lyrics"]
        fusion = self.fusion()
        confident = sound_ranking is not None and sound_ranking.confident
        # A signal applies to a track when the track has vectors for it (and, for sound,
        # when the query matched the sound model).
        applies = {"sound": self.indexes.track_ids("audio-text") if confident else frozenset(),
                   "lyrics": self.indexes.track_ids("lyrics")}
        if fusion is not None and confident and sound is not None and sound.confident:
            in_list = {"sound": {t for t, _ in by_sound}, "lyrics": {t for t, _ in by_lyrics}}
            union = in_list["sound"] | in_list["lyrics"]
            # The seeds' intersection, where a track only has to be in the lists of the
            # signals that apply to it (so tracks without lyrics still compete on sound).
            pool = {t for t in union
                    if all(t in in_list[s] for s in in_list if t in applies[s])}
            if len(pool) < needed:
                notes.append(f"fusion over the union: only {len(pool)} tracks were in both "
                             "top lists")
                pool = union
            return self._fusion_ranking(fusion, sorted(pool), sound.vector, meaning), "fusion"
        notes.append("combined by reciprocal-rank fusion " + (
            "(no fusion model configured)" if fusion is None else
            "(the fusion model needs a query that matches the sound model)"))
        signals, applying = [by_sound, by_lyrics], [applies["sound"], applies["lyrics"]]
        by_tags = rankings.get("tags", [])[:self.candidates]
        if by_tags:  # the query names what some tracks' tags say: it judges every track
            notes.append(f"tags: the query's words are in the tags of {len(rankings['tags'])} "
                         "tracks")
            signals.append(by_tags)
            applying.append(self.metadata.track_ids())
        return reciprocal_rank_fusion(signals, applying), "rrf"

    def _fusion_ranking(self, fusion: FusionModel, track_ids: list[int],
                        query_audio: np.ndarray, query_text: np.ndarray) -> Ranking:
        if not track_ids:
            return []
        audio = self.indexes.track_vectors("audio-text", track_ids)
        lyrics = self.indexes.track_vectors("lyrics", track_ids)
        has_lyrics = np.array([t in lyrics for t in track_ids], dtype=np.float32)
        no_lyrics = np.zeros(len(query_text), np.float32)
        scores = fusion.score(
            query_audio, query_text,
            np.stack([audio.get(t, np.zeros(len(query_audio), np.float32)) for t in track_ids]),
            np.stack([lyrics.get(t, no_lyrics) for t in track_ids]), has_lyrics)
        order = np.argsort(-scores, kind="stable")
        return [(track_ids[i], float(scores[i])) for i in order]

    # -- audio queries ---------------------------------------------------------------

    def similar(self, track_id: int, *, limit: int = 10, offset: int = 0,
                filters: TrackFilter | None = None) -> SearchResult:
        started = time.perf_counter()
        _check_page(limit, offset)
        track = self.catalog.track(track_id)
        if track is None or track.missing_since is not None:
            raise TrackNotFound(f"no track with id {track_id}")
        vector = self.indexes.track_vectors("audio", [track_id]).get(track_id)
        if vector is None:
            raise SearchError(f"track {track_id} ({track.title}) has no audio vector yet; "
                              "run `newwave index` to embed it")
        ranking = self._ranked("audio", vector, offset + limit, self._allowed(filters),
                               exclude=track_id)
        hits = self._hits(ranking[offset:offset + limit], offset, "similarity", {},
                          lambda _: f"sounds like {track.title}")
        return SearchResult("similar", None, hits, len(ranking), [], _ms(started))

    def by_audio(self, vector: np.ndarray, seconds: float, *, limit: int = 10,
                 offset: int = 0, filters: TrackFilter | None = None) -> SearchResult:
        """Tracks near a recording's audio vector (``seconds``: the recording's length)."""
        started = time.perf_counter()
        _check_page(limit, offset)
        ranking = self._ranked("audio", vector, offset + limit, self._allowed(filters))
        hits = self._hits(ranking[offset:offset + limit], offset, "similarity", {},
                          lambda _: "sounds like the recording")
        notes = [f"recording of {seconds:.1f} s"]
        if seconds < 3.0:
            notes.append("recordings under 3 s are looped to fill the model's window; "
                         "longer recordings match better")
        return SearchResult("by-audio", None, hits, len(ranking), notes, _ms(started))

    # -- shared ----------------------------------------------------------------------

    def _allowed(self, filters: TrackFilter | None) -> set[int] | None:
        return self.catalog.filter_track_ids(filters) if filters and filters.active else None

    def _ranked(self, kind: VectorKind, query: np.ndarray, want: int,
                allowed: set[int] | None, exclude: int | None = None) -> Ranking:
        """Best tracks for ``query`` in one space: windows max-pooled per track, filters
        applied, fetching deeper until ``want`` tracks pass (or the index is exhausted)."""
        size = self.indexes.size(kind)
        if want <= 0 or size == 0 or allowed is not None and not allowed:
            return []
        k = min(size, want * 2)
        while True:
            ids, scores = self.indexes.search(kind, query, k)
            best: dict[int, float] = {}
            for track_id, score in zip(track_ids_of(ids).tolist(), scores.tolist()):
                if (allowed is None or track_id in allowed) and track_id != exclude \
                        and track_id not in best:
                    best[track_id] = score  # results come best first: first is the max
            if len(best) >= want or k >= size:
                return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:want]
            k = min(size, k * 4)

    def _signal_scores(self, track_ids: list[int], sound: SoundRanking | None,
                       meaning: np.ndarray | None) -> dict[int, dict[str, float]]:
        """Per-signal scores of the page's tracks, computed exactly for every signal the
        query has (so a client can explain every hit, even one only one list found)."""
        scores: dict[int, dict[str, float]] = {t: {} for t in track_ids}
        if not track_ids:
            return scores
        if sound is not None and sound.confident:
            for track_id in track_ids:
                value = sound.score(track_id)
                if value is not None:
                    scores[track_id]["sound"] = value
        if meaning is not None:
            stored = self.indexes.window_vectors("lyrics", track_ids)
            for track_id, row in zip(stored.track_ids.tolist(), stored.matrix):
                value = float(row @ meaning)
                scores[track_id]["lyrics"] = max(value, scores[track_id].get("lyrics", -1.0))
        return scores

    def _hits(self, page: Ranking, offset: int, ranked_by: str,
              signals: dict[int, dict[str, float]],
              why: Callable[[int], str | None]) -> list[Hit]:
        tracks = self.catalog.tracks_by_id(t for t, _ in page)
        hits = []
        for rank, (track_id, score) in enumerate(page, start=offset + 1):
            per_signal = {**signals.get(track_id, {}), ranked_by: score}
            hits.append(Hit(tracks[track_id], rank, score, per_signal,
                            _explain(per_signal, why(track_id))))
        return hits


def _no_note(_: int) -> None:
    return None


def _explain(scores: dict[str, float], sound_note: str | None) -> str:
    parts = []
    if "sound" in scores:
        parts.append(f"sound {scores['sound']:.2f}" + (f" ({sound_note})" if sound_note else ""))
    if "lyrics" in scores:
        parts.append(f"lyrics {scores['lyrics']:.2f}")
    if "similarity" in scores:
        parts.append(f"{sound_note or 'similar sound'} ({scores['similarity']:.2f})")
    return "; ".join(parts) or "no signal"


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= 1000:
        raise SearchError(f"limit must be between 1 and 1000, got {limit}")
    if offset < 0:
        raise SearchError(f"offset must be 0 or more, got {offset}")


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
