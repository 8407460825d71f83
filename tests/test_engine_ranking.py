"""The search engine's ranking in one space, its filters and its fusion of signals, on a
catalog and FAISS indexes of hand-made vectors (no model is loaded): every expected
ranking and score below is worked out by hand from the vectors.

Vectors live in 4-d spaces; ``E[i]`` is the i-th unit vector, so a track's score for a
query ``E[0]`` is the first component of its best window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from newwave.catalog import Catalog, Lyrics, TrackFilter, TrackRecord
from newwave.config import Settings
from newwave.index import IndexSet
from newwave.models.base import ModelInfo
from newwave.models.query import QueryEncoder
from newwave.models.registry import ActiveModels
from newwave.search import SearchEngine

E = np.eye(4, dtype=np.float32)
SPACES = {kind: ModelInfo(f"hand-made {kind}", "1", 4) for kind in ("audio", "audio-text", "lyrics")}


def unit(*components: float) -> np.ndarray:
    vector = np.array(components, dtype=np.float32)
    return vector / np.linalg.norm(vector)


class Library:
    """A catalog, its index set and an engine; tracks are added with their vectors."""

    def __init__(self, folder: Path) -> None:
        self.catalog = Catalog(folder / "catalog.sqlite")
        # A kind that is not one of the three spaces is an error, as with real models.
        self.indexes = IndexSet(self.catalog, folder / "indexes", SPACES.__getitem__)
        models = ActiveModels(Settings.load(data_dir=folder / "data"))  # never loaded here
        self.engine = SearchEngine(self.catalog, self.indexes, QueryEncoder(models))
        self.ids: dict[str, int] = {}

    def add(self, title: str, vectors: dict[str, np.ndarray], *, artist: str = "Someone",
            lyrics: bool = False) -> int:
        track_id = self.catalog.save_track(TrackRecord(
            path=f"/music/{title}.flac", root_id=None, content_hash=title, size=1, mtime_ns=1,
            format="flac", title=title, artist=artist),
            Lyrics("embedded", f"words of {title}") if lyrics else None)
        for kind, matrix in vectors.items():
            self.catalog.put_vectors(self.indexes.space(kind), track_id, title, matrix)
        self.ids[title] = track_id
        return track_id

    def ready(self) -> Library:
        self.indexes.sync()
        return self


@pytest.fixture
def library(tmp_path: Path):
    lib = Library(tmp_path)
    yield lib
    lib.catalog.close()


def hits(result) -> list[tuple[str, float]]:
    return [(hit.track.title, round(hit.score, 4)) for hit in result.hits]


# -- one space: best window per track, order, ties, depth -----------------------------


def test_a_track_scores_by_its_best_window_and_ranks_by_score(library: Library) -> None:
    # Query E[0]. Loud: windows 0.6 and 1.0 -> 1.0 (its best window is its second);
    # Mid: one window 0.8; Quiet: E[1] -> 0.0.
    library.add("Loud", {"audio": np.stack([unit(0.6, 0.8, 0, 0), E[0]])})
    library.add("Mid", {"audio": unit(0.8, 0.6, 0, 0)})
    library.add("Quiet", {"audio": E[1]})
    library.ready()
    result = library.engine.by_audio(E[0], 5.0, limit=3)
    assert hits(result) == [("Loud", 1.0), ("Mid", 0.8), ("Quiet", 0.0)]
    assert [hit.rank for hit in result.hits] == [1, 2, 3]
    # A page further down keeps the ranks of the whole ranking.
    assert [(hit.track.title, hit.rank) for hit in
            library.engine.by_audio(E[0], 5.0, limit=2, offset=1).hits] == \
        [("Mid", 2), ("Quiet", 3)]


def test_equal_scores_rank_by_ascending_track_id(library: Library) -> None:
    # Five tracks with the same vector: every score is 1.0, so the order is the ids'.
    # (FAISS itself returns these ties highest id first.)
    for title in ("first", "second", "third", "fourth", "fifth"):
        library.add(title, {"audio": E[0]})
    library.ready()
    result = library.engine.by_audio(E[0], 5.0, limit=5)
    assert [hit.track.id for hit in result.hits] == sorted(library.ids.values())
    assert [hit.track.title for hit in result.hits] == \
        ["first", "second", "third", "fourth", "fifth"]


def test_a_space_with_one_track_still_finds_it(library: Library) -> None:
    library.add("Only", {"lyrics": E[2]}, lyrics=True)  # the one track with a lyrics vector
    library.add("Other", {"audio": E[0]})
    library.ready()
    assert library.indexes.size("lyrics") == 1
    assert library.engine._ranked("lyrics", E[2], 5, None) == [(library.ids["Only"], 1.0)]


def test_a_filter_that_passes_only_the_worst_tracks_searches_deeper(library: Library) -> None:
    """10 tracks, 2 of them by "Far Away", which score lowest. Asking for 2 fetches the
    4 best vectors first (none passes), then 16 (capped at the 10 there are): both are
    found, best first."""
    def scoring(x: float) -> np.ndarray:  # a unit vector whose score for E[0] is x
        return np.array([x, np.sqrt(1 - x * x), 0, 0], dtype=np.float32)

    for i in range(8):  # scores 1.0, 0.9 ... 0.3
        library.add(f"near {i}", {"audio": scoring(1.0 - 0.1 * i)})
    library.add("far a", {"audio": scoring(0.2)}, artist="Far Away")
    library.add("far b", {"audio": scoring(0.1)}, artist="Far Away")
    library.ready()
    far = TrackFilter(artist="far away")
    result = library.engine.by_audio(E[0], 5.0, limit=2, filters=far)
    assert hits(result) == [("far a", 0.2), ("far b", 0.1)]
    assert result.candidates == 2
    # Asking for 5 when only 2 pass: the whole index is searched once, and that is all.
    assert hits(library.engine.by_audio(E[0], 5.0, limit=5, filters=far)) == \
        [("far a", 0.2), ("far b", 0.1)]
    # Nothing passes: nothing is searched for.
    assert library.engine.by_audio(E[0], 5.0, filters=TrackFilter(artist="nobody")).hits == []
    # An inactive filter filters nothing.
    assert len(library.engine.by_audio(E[0], 5.0, limit=10, filters=TrackFilter()).hits) == 10


# -- combined mode: which signals a track is judged on, and the fusion pool ----------
#
# These go through the engine's public search(), so the query is read by the real
# offline models (MiniLM, musicnn's tag space); the library's lyrics vectors are built
# around the engine's own vector for the query, so their similarities are known exactly:
# cos(q, normalise(q + c r)) = 1 / sqrt(1 + c^2) for a unit r orthogonal to q.

PIANO = "solo piano"  # matches musicnn's piano tags: a confident sound query
NO_SOUND = "tax forms and spreadsheets"  # matches no tag: the query has no sound signal


@pytest.fixture(scope="module")
def models(tmp_path_factory, text_encoder, musicnn) -> ActiveModels:
    models = ActiveModels(Settings.load(data_dir=tmp_path_factory.mktemp("models")))
    models.text_encoder, models.audio_model = text_encoder, musicnn
    return models


@pytest.fixture(scope="module")
def queries(models: ActiveModels) -> QueryEncoder:
    return QueryEncoder(models)  # shared: it caches the queries it has encoded


@pytest.fixture
def real(tmp_path: Path, models: ActiveModels, queries: QueryEncoder):
    """A library in the real models' spaces (no track is embedded: vectors are set)."""

    class Real(Library):
        def __init__(self, folder: Path, candidates: int, with_fusion: bool) -> None:
            self.catalog = Catalog(folder / "catalog.sqlite")
            self.indexes = IndexSet(self.catalog, folder / "indexes", models.space_info)
            self.models = models
            fusion = fusion_model(self) if with_fusion else None  # untrained: any order
            self.engine = SearchEngine(self.catalog, self.indexes, queries,
                                       fusion=lambda: fusion, candidates=candidates)
            self.ids = {}

        def lyrics_at(self, query: str, similarity: float) -> np.ndarray:
            q = self.engine.queries.encode(query).meaning
            r = np.zeros_like(q)
            r[int(np.argmin(np.abs(q)))] = 1.0
            r = r - (r @ q) * q
            r /= np.linalg.norm(r)
            c = np.sqrt(1 / similarity ** 2 - 1)
            return (q + c * r) / np.linalg.norm(q + c * r)

        def some_sound(self, seed: int) -> np.ndarray:
            dim = self.indexes.space("audio-text").dim
            vector = np.random.default_rng(seed).uniform(0.05, 0.6, dim).astype(np.float32)
            return vector / np.linalg.norm(vector)

    made = []

    def make(candidates: int = 200, with_fusion: bool = False) -> Real:
        made.append(Real(tmp_path / f"library{len(made)}", candidates, with_fusion))
        return made[-1]

    yield make
    for library in made:
        library.catalog.close()


def fusion_model(library) -> object:
    from newwave.models.fusion import FusionConfig, FusionModel

    audio = library.indexes.space("audio-text")
    text = library.models.text_encoder.info
    return FusionModel(FusionConfig(audio_dim=audio.dim, text_dim=text.dim,
                                    audio_space=str(audio), text_space=str(text),
                                    hidden=8, out=4))


RRF_NOTE = "combined by reciprocal-rank fusion (no fusion model configured)"


def test_without_a_sound_signal_tracks_are_fused_on_lyrics_alone(real) -> None:
    """The query matches no sound, so only lyrics apply, even to tracks that have sound
    vectors: each score is 1 / (60 + lyrics rank), divided by 1 signal, not 2."""
    library = real()
    library.add("first", {"lyrics": library.lyrics_at(NO_SOUND, 0.9),
                          "audio-text": library.some_sound(1)}, lyrics=True)
    library.add("second", {"lyrics": library.lyrics_at(NO_SOUND, 0.6),
                           "audio-text": library.some_sound(2)}, lyrics=True)
    library.add("third", {"lyrics": library.lyrics_at(NO_SOUND, 0.3)}, lyrics=True)
    library.add("no lyrics", {"audio-text": library.some_sound(3)})
    library.ready()
    result = library.engine.search(NO_SOUND, "combined", limit=10)
    assert [(hit.track.title, hit.scores["rrf"]) for hit in result.hits] == \
        [("first", pytest.approx(1 / 61)), ("second", pytest.approx(1 / 62)),
         ("third", pytest.approx(1 / 63))]
    assert RRF_NOTE in result.notes
    assert all("fusion" not in note or note == RRF_NOTE for note in result.notes)


def test_a_fusion_model_needs_a_sound_signal(real) -> None:
    library = real(with_fusion=True)
    library.add("words", {"lyrics": library.lyrics_at(NO_SOUND, 0.9),
                          "audio-text": library.some_sound(1)}, lyrics=True)
    library.ready()
    result = library.engine.search(NO_SOUND, "combined", limit=10)
    assert [(hit.track.title, hit.scores["rrf"]) for hit in result.hits] == \
        [("words", pytest.approx(1 / 61))]
    assert "combined by reciprocal-rank fusion (the fusion model needs a query that " \
           "matches the sound model)" in result.notes


def test_the_fusion_pool_is_the_top_lists_intersection_on_the_signals_that_apply(
        real) -> None:
    """4 candidates per signal, a page of 4. Sound list: both tracks with sound vectors
    (A, B); lyrics list: the 4 best of 5 by lyrics (A, D, E, F; B is 5th). B has both
    signals but is in one list only: out. A is in both; D, E, F have lyrics only and
    are in the lyrics list: in. The pool is {A, D, E, F}: as many as the page, so the
    model ranks exactly those (no fallback to the union)."""
    library = real(candidates=4, with_fusion=True)
    library.add("A", {"lyrics": library.lyrics_at(PIANO, 0.9),
                      "audio-text": library.some_sound(1)}, lyrics=True)
    library.add("B", {"lyrics": library.lyrics_at(PIANO, 0.1),
                      "audio-text": library.some_sound(2)}, lyrics=True)
    for title, similarity in (("D", 0.8), ("E", 0.7), ("F", 0.6)):
        library.add(title, {"lyrics": library.lyrics_at(PIANO, similarity)}, lyrics=True)
    library.ready()
    result = library.engine.search(PIANO, "combined", limit=4)
    assert sorted(hit.track.title for hit in result.hits) == ["A", "D", "E", "F"]
    assert result.candidates == 4
    assert all("fusion" in hit.scores and "rrf" not in hit.scores for hit in result.hits)
    assert not any("reciprocal-rank" in note or "union" in note for note in result.notes)


def test_a_pool_smaller_than_the_page_falls_back_to_the_union(real) -> None:
    """A (both signals), C (sound only), D (lyrics only): each is in the lists of the
    signals it has, so the pool is all 3, fewer than the 4 asked for: the model ranks
    the union (the same 3 here) and says so."""
    library = real(candidates=4, with_fusion=True)
    library.add("A", {"lyrics": library.lyrics_at(PIANO, 0.9),
                      "audio-text": library.some_sound(1)}, lyrics=True)
    library.add("C", {"audio-text": library.some_sound(2)})
    library.add("D", {"lyrics": library.lyrics_at(PIANO, 0.5)}, lyrics=True)
    library.ready()
    result = library.engine.search(PIANO, "combined", limit=4)
    assert sorted(hit.track.title for hit in result.hits) == ["A", "C", "D"]
    assert "fusion over the union: only 3 tracks were in both top lists" in result.notes
