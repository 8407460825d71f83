"""The search engine: one door for the CLI, the API and the evaluation harness.

Modes:
- ``audio``: text -> tracks by sound, in the audio–text space (musicnn's tag space
  offline, CLAP's joint space when configured).
- ``lyrics``: text -> tracks by what their lyrics say; long lyrics are several vectors
  and a track scores by its best window (max-pooling).
- ``combined``: both. The top ``candidates`` of each signal are gathered; with a
  trained fusion model, their intersection is re-ranked by it (a track needs to be in
  the lists of the signals it has: one without lyrics qualifies on sound; the union
  when the intersection is smaller than the page asked for); without one, reciprocal-rank fusion
  over the union: ``1 / (60 + rank)`` summed over the signals, divided by the number of
  signals that apply to the track, so tracks without lyrics compete on sound alone
  instead of losing for lacking a lyrics rank.
- ``similar`` (track -> tracks) and ``by_audio`` (a recorded snippet -> tracks) search
  the audio embedding space.
Every mode takes a :class:`TrackFilter` and ``offset``/``limit`` paging, and every hit
carries its per-signal scores.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from newwave.catalog import Catalog, Track, TrackFilter, VectorSpace
from newwave.index import SyncReport, VectorIndex, track_ids_of
from newwave.index.faiss_index import DEFAULT_APPROXIMATE_FROM
from newwave.models.base import ModelInfo, VectorKind, l2_normalize
from newwave.models.registry import ActiveModels
from newwave.models.tagspace import TagSpaceModel
from newwave.search.rank_fusion import Ranking, reciprocal_rank_fusion

Mode = Literal["audio", "lyrics", "combined"]
MODES: tuple[Mode, ...] = ("audio", "lyrics", "combined")


class SearchError(ValueError):
    """A search that cannot run as asked; the message says why and what to do."""


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
    def __init__(self, catalog: Catalog, models: ActiveModels, index_dir: Path, *,
                 candidates: int = 200, approximate_from: int = DEFAULT_APPROXIMATE_FROM) -> None:
        self.catalog = catalog
        self.models = models
        self.index_dir = index_dir
        self.candidates = candidates
        self.approximate_from = approximate_from
        self._indexes: dict[int, VectorIndex] = {}
        self._spaces: dict[VectorKind, VectorSpace] = {}
        # FAISS indexes must not be searched while a sync edits them (the API syncs
        # from a background job while requests search).
        self._lock = threading.RLock()

    # -- indexes ---------------------------------------------------------------------

    def index(self, kind: VectorKind) -> VectorIndex:
        """The synced index of the active model's ``kind`` space."""
        space = self._space(kind)
        with self._lock:
            if space.id not in self._indexes:
                index = VectorIndex(space, self.index_dir, approximate_from=self.approximate_from)
                index.sync(self.catalog)
                self._indexes[space.id] = index
            return self._indexes[space.id]

    def sync(self) -> dict[str, SyncReport]:
        """Bring every active index in line with the catalog (after indexing, or to
        repair drift left by a crash)."""
        kinds: tuple[VectorKind, ...] = ("audio-text", "audio", "lyrics")
        with self._lock:
            return {kind: self.index(kind).sync(self.catalog) for kind in kinds}

    def _space(self, kind: VectorKind) -> VectorSpace:
        """The active model's space of ``kind``, looked up once: finding it may insert a
        row, and a search must not take the catalog's write lock on every query."""
        if kind not in self._spaces:
            info: ModelInfo = self.models.text_encoder.info if kind == "lyrics" \
                else self.models.audio_model.spaces[kind]
            self._spaces[kind] = self.catalog.vector_space(kind, info.name, info.version,
                                                           info.dim)
        return self._spaces[kind]

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
        allowed = self._allowed(filters)
        want = max(offset + limit, self.candidates if mode == "combined" else 0)
        notes: list[str] = []
        rankings: dict[str, Ranking] = {}
        audio_query = text_query = None
        if mode in ("lyrics", "combined"):
            text_query = self.models.text_encoder.encode([query])[0]
            rankings["lyrics"] = self._ranked("lyrics", text_query, want, allowed)
        if mode in ("audio", "combined"):
            queries = self.models.audio_text_queries
            shares_encoder = isinstance(queries, TagSpaceModel) and text_query is not None
            audio_query = queries.embed_encoded(text_query[None])[0] if shares_encoder \
                else queries.embed_text([query])[0]
            if audio_query.note:
                notes.append(f"sound: {audio_query.note}")
            rankings["sound"] = self._ranked("audio-text", audio_query.vector, want, allowed) \
                if audio_query.confident else []
        if mode == "combined":
            ranking, fused_by = self._fuse(rankings, audio_query, text_query, offset + limit, notes)
        else:
            fused_by = "sound" if mode == "audio" else "lyrics"
            ranking = rankings[fused_by]
        page = ranking[offset:offset + limit]
        signals = self._signal_scores([t for t, _ in page], audio_query, text_query)
        hits = self._hits(page, offset, fused_by, signals, audio_query.note if audio_query else None)
        return SearchResult(mode, query, hits, len(ranking), notes, _ms(started))

    def _fuse(self, rankings: dict[str, Ranking], audio_query, text_query: np.ndarray,
              needed: int, notes: list[str]) -> tuple[Ranking, str]:
        sound, lyrics = rankings["sound"], rankings["lyrics"]
        fusion = self.models.fusion
        confident = audio_query is not None and audio_query.confident
        # A signal applies to a track when the track has vectors for it (and, for sound,
        # when the query matched the sound model).
        applies = {"sound": self.index("audio-text").track_ids if confident else frozenset(),
                   "lyrics": self.index("lyrics").track_ids}
        if fusion is not None and confident:
            in_list = {"sound": {t for t, _ in sound}, "lyrics": {t for t, _ in lyrics}}
            union = in_list["sound"] | in_list["lyrics"]
            # The seeds' intersection, where a track only has to be in the lists of the
            # signals that apply to it (so tracks without lyrics still compete on sound).
            pool = {t for t in union
                    if all(t in in_list[s] for s in in_list if t in applies[s])}
            if len(pool) < needed:
                notes.append(f"fusion over the union: only {len(pool)} tracks were in both "
                             "top lists")
                pool = union
            return self._fusion_ranking(sorted(pool), audio_query.vector, text_query), "fusion"
        notes.append("combined by reciprocal-rank fusion " + (
            "(no fusion model configured)" if fusion is None else
            "(the fusion model needs a query that matches the sound model)"))
        return reciprocal_rank_fusion([sound, lyrics], [applies["sound"], applies["lyrics"]]), "rrf"

    def _fusion_ranking(self, track_ids: list[int], query_audio: np.ndarray,
                        query_text: np.ndarray) -> Ranking:
        if not track_ids:
            return []
        audio = self.track_vectors("audio-text", track_ids)
        lyrics = self.track_vectors("lyrics", track_ids)
        has_lyrics = np.array([t in lyrics for t in track_ids], dtype=np.float32)
        text_dim = self.models.text_encoder.info.dim
        scores = self.models.fusion.score(
            query_audio, query_text,
            np.stack([audio.get(t, np.zeros(len(query_audio), np.float32)) for t in track_ids]),
            np.stack([lyrics.get(t, np.zeros(text_dim, np.float32)) for t in track_ids]),
            has_lyrics)
        order = np.argsort(-scores, kind="stable")
        return [(track_ids[i], float(scores[i])) for i in order]

    # -- audio queries ---------------------------------------------------------------

    def similar(self, track_id: int, *, limit: int = 10, offset: int = 0,
                filters: TrackFilter | None = None) -> SearchResult:
        started = time.perf_counter()
        _check_page(limit, offset)
        track = self.catalog.track(track_id)
        if track is None or track.missing_since is not None:
            raise SearchError(f"no track with id {track_id} in the library")
        vector = self.track_vectors("audio", [track_id]).get(track_id)
        if vector is None:
            raise SearchError(f"track {track_id} ({track.title}) has no audio vector yet; "
                              "run `newwave index` to embed it")
        ranking = self._ranked("audio", vector, offset + limit, self._allowed(filters),
                               exclude=track_id)
        hits = self._hits(ranking[offset:offset + limit], offset, "similarity", {},
                          f"sounds like {track.title}")
        return SearchResult("similar", None, hits, len(ranking), [], _ms(started))

    def by_audio(self, waveform: np.ndarray, sample_rate: int, *, limit: int = 10,
                 offset: int = 0, filters: TrackFilter | None = None) -> SearchResult:
        started = time.perf_counter()
        _check_page(limit, offset)
        seconds = waveform.size / sample_rate
        if seconds < 1.0:
            raise SearchError(f"the recording is {seconds:.1f} s long; record at least 3 s")
        model = self.models.audio_model
        vector = model.embed_audio(waveform, sample_rate)["audio"]
        ranking = self._ranked("audio", vector, offset + limit, self._allowed(filters))
        hits = self._hits(ranking[offset:offset + limit], offset, "similarity", {},
                          "sounds like the recording")
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
        index = self.index(kind)
        if want <= 0 or index.size == 0 or allowed is not None and not allowed:
            return []
        k = min(index.size, want * 2)
        while True:
            with self._lock:
                ids, scores = index.search(query, k)
            best: dict[int, float] = {}
            for track_id, score in zip(track_ids_of(ids).tolist(), scores.tolist()):
                if (allowed is None or track_id in allowed) and track_id != exclude \
                        and track_id not in best:
                    best[track_id] = score  # results come best first: first is the max
            if len(best) >= want or k >= index.size:
                return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:want]
            k = min(index.size, k * 4)

    def track_vectors(self, kind: VectorKind, track_ids: list[int]) -> dict[int, np.ndarray]:
        """One unit vector per track (mean of its windows) from the catalog."""
        stored = self.catalog.vectors(self._space(kind), track_ids)
        pooled = {}
        for track_id in np.unique(stored.track_ids):
            pooled[int(track_id)] = l2_normalize(stored.matrix[stored.track_ids == track_id].mean(0))
        return pooled

    def _signal_scores(self, track_ids: list[int], audio_query, text_query) -> dict[int, dict]:
        """Per-signal scores of the page's tracks, computed exactly for every signal the
        query has (so a client can explain every hit, even one only one list found)."""
        scores: dict[int, dict[str, float]] = {t: {} for t in track_ids}
        if not track_ids:
            return scores
        if audio_query is not None and audio_query.confident:
            stored = self.catalog.vectors(self._space("audio-text"), track_ids)
            for track_id, row in zip(stored.track_ids.tolist(), stored.matrix):
                scores[track_id]["sound"] = float(row @ audio_query.vector)
        if text_query is not None:
            stored = self.catalog.vectors(self._space("lyrics"), track_ids)
            for track_id, row in zip(stored.track_ids.tolist(), stored.matrix):
                value = float(row @ text_query)
                scores[track_id]["lyrics"] = max(value, scores[track_id].get("lyrics", -1.0))
        return scores

    def _hits(self, page: Ranking, offset: int, ranked_by: str,
              signals: dict[int, dict[str, float]], why: str | None) -> list[Hit]:
        tracks = self.catalog.tracks_by_id(t for t, _ in page)
        hits = []
        for rank, (track_id, score) in enumerate(page, start=offset + 1):
            per_signal = {**signals.get(track_id, {}), ranked_by: score}
            hits.append(Hit(tracks[track_id], rank, score, per_signal,
                            _explain(per_signal, why)))
        return hits


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
