"""Sound scoring of multi-concept descriptions over a generated tag library.

The library is musicnn tag probabilities written by hand (which tracks are sad, piano,
sung...) so that the right answer is known; the query side is the real one (the
offline MiniLM text encoder and the tag space), and so is the scorer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from newwave.models.musicnn.model import TAGS
from newwave.models.tagspace import TagPrior, TagSpaceModel, calibrate_tags
from newwave.search.sound import SoundOptions, SoundScorer

BASE = 0.05  # every tag's probability on an ordinary track


def tags(**values: float) -> np.ndarray:
    """A track's tag vector: BASE everywhere, ``values`` on the named tags (both the MSD
    and the MTT tag of a name, e.g. sad -> msd:sad)."""
    vector = np.full(len(TAGS), BASE, dtype=np.float32)
    for name, value in values.items():
        name = name.replace("_", " ")
        hits = [i for i, tag in enumerate(TAGS) if tag.split(":", 1)[1].lower() == name]
        assert hits, name
        vector[hits] = value
    return vector


@dataclass
class Library:
    ids: np.ndarray
    matrix: np.ndarray
    descriptors: dict[int, object]


@pytest.fixture(scope="module")
def tag_model(text_encoder) -> TagSpaceModel:
    return TagSpaceModel(text_encoder)


def scorer(tag_model: TagSpaceModel, tracks: dict[int, np.ndarray],
           measured: dict[int, object] | None = None, **options: bool) -> SoundScorer:
    ids = np.array(sorted(tracks), dtype=np.int64)
    matrix = np.stack([tracks[i] for i in ids])
    return SoundScorer(lambda: tag_model, lambda texts: tag_model.embed_text(texts),
                       lambda: (ids, matrix), lambda: measured or {},
                       SoundOptions(**options))


def ordinary(n: int, start: int = 100) -> dict[int, np.ndarray]:
    """Filler tracks: rock, pop, electronic in turn, so the library has a spread."""
    kinds = [tags(rock=0.6), tags(pop=0.6), tags(electronic=0.6, techno=0.4)]
    return {start + i: kinds[i % 3] for i in range(n)}


def top(ranking, n: int = 1) -> list[int]:
    return [track_id for track_id, _ in ranking.ranking[:n]]


def test_the_track_with_both_concepts_wins(tag_model: TagSpaceModel) -> None:
    library = {1: tags(piano=0.95),  # very much piano, not sad
               2: tags(piano=0.6, sad=0.6, mellow=0.4),  # both
               3: tags(sad=0.9, mellow=0.5),  # sad, no piano
               **ordinary(20)}
    for query in ("sad piano", "piano, sad", "sad and piano"):
        result = scorer(tag_model, library).rank(query)
        assert top(result) == [2], query
        assert {c.label for c in result.concepts} == {"sad", "piano"}
        # the explanation names each concept and how the hit met it
        assert "sad +" in result.explain(2) and "piano +" in result.explain(2)
    # As one blurred concept, the strongest tag decides: the very-piano track.
    assert top(scorer(tag_model, library, concepts=False, calibrate=False).rank(
        "sad piano")) == [1]


def test_negation_counts_against(tag_model: TagSpaceModel) -> None:
    library = {1: tags(piano=0.9, vocal=0.9, vocals=0.9, singing=0.9),
               2: tags(piano=0.8, no_vocals=0.8, instrumental=0.8),
               **ordinary(20)}
    result = scorer(tag_model, library).rank("piano, no vocals")
    assert top(result) == [2]
    assert [c.label for c in result.concepts if c.negated] == ["not vocals"]
    assert top(scorer(tag_model, library).rank("piano with vocals")) == [1]


def test_unknown_words_are_named_and_unknown_queries_rank_nothing(
        tag_model: TagSpaceModel) -> None:
    library = {1: tags(ambient=0.9, quiet=0.8), **ordinary(10)}
    result = scorer(tag_model, library).rank("song about war")
    assert result.ranking == [] and not result.confident
    assert "not understood by the sound model: 'war'" in result.notes
    partly = scorer(tag_model, library).rank("calm ambient for studying")
    assert top(partly) == [1]
    assert any("'studying'" in note for note in partly.notes)


def test_filters_limit_the_ranking(tag_model: TagSpaceModel) -> None:
    library = {1: tags(piano=0.9), 2: tags(piano=0.8), **ordinary(5)}
    result = scorer(tag_model, library).rank("piano", allowed={2, 100})
    assert [t for t, _ in result.ranking] == [2, 100]


@dataclass(frozen=True)
class Descriptors:
    bpm: float | None = None
    key: str | None = None
    mode: str | None = None
    loudness_lufs: float | None = None


def test_tempo_and_key_wishes_meet_the_descriptors(tag_model: TagSpaceModel) -> None:
    library = {i: tags(techno=0.8, electronic=0.8) for i in range(1, 6)}
    descriptors = {1: Descriptors(bpm=90, key="C", mode="major"),
                   2: Descriptors(bpm=128, key="A", mode="minor"),
                   3: Descriptors(bpm=140, key="C", mode="major"),
                   4: Descriptors(bpm=64, key="G", mode="major"),
                   5: Descriptors()}  # not analysed: neutral
    score = scorer(tag_model, library, descriptors)
    assert top(score.rank("techno, 128 bpm")) == [2]
    assert top(score.rank("techno, around 139 bpm")) == [3]
    assert top(score.rank("techno in A minor")) == [2]
    # half time counts, less than the tempo itself: 64 is half of 128, 90 is not near
    ranked = [t for t, _ in score.rank("techno, 128 bpm").ranking]
    assert ranked.index(4) < ranked.index(1)
    assert top(score.rank("fast techno")) == [3]
    # descriptors off: the tracks tie on their tags, and ties go to the lower id
    assert top(scorer(tag_model, library, descriptors, descriptors=False).rank(
        "techno, 128 bpm")) == [1]


def test_calibration_lets_rare_tags_count() -> None:
    # A common tag (rock: mean 0.5) and a rare one (harpsichord: mean 0.01). Track 1 is
    # ordinary rock at 0.6; track 2 has harpsichord at 0.1, ten times its base rate.
    rock, harp = TAGS.index("msd:rock"), TAGS.index("mtt:harpsichord")
    prior_logs = np.full(len(TAGS), np.log(BASE))
    prior_logs[rock], prior_logs[harp] = np.log(0.5), np.log(0.01)
    prior = TagPrior(prior_logs, np.full(len(TAGS), 0.5))
    tracks = np.full((2, len(TAGS)), BASE, dtype=np.float32)
    tracks[0, rock], tracks[1, harp] = 0.6, 0.1
    tracks[1, rock], tracks[0, harp] = 0.5, 0.01
    z = calibrate_tags(tracks, prior)
    # Raw, rock's 0.6 outweighs harpsichord's 0.1. Calibrated (log-probabilities against
    # the prior, which dominates a 2-track library), harpsichord at ten times its base
    # rate (log 10 = 2.3) stands further out than rock at 1.2 times its own (log 1.2 = 0.18).
    assert tracks[0, rock] > tracks[1, harp]
    assert z[1, harp] > z[0, rock] > 0
