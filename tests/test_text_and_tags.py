from __future__ import annotations

import numpy as np
import pytest

from newwave.demo.synth import PIECES, SAMPLE_RATE, render
from newwave.models.tagspace import TagSpaceModel
from newwave.models.text import ModelLoadError, SentenceTransformerEncoder


def test_encode_is_batched_normalised_and_semantic(text_encoder) -> None:
    vectors = text_encoder.encode(["a sad song about lost love", "heartbreak and grief",
                                   "a recipe for tomato soup"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert text_encoder.encode([]).shape == (0, 384)


def test_long_text_is_chunked_not_truncated(text_encoder) -> None:
    head = " ".join(["the river runs quietly through the valley"] * 60)  # ~ 420 tokens
    tail = " ".join(["electric guitars scream in a heavy metal storm"] * 10)
    windows = text_encoder.chunks(head + " " + tail)
    assert len(windows) >= 2 and all(w in head + " " + tail for w in windows)
    assert "metal" in windows[-1]
    with_tail, without = text_encoder.encode([head + " " + tail, head])
    assert with_tail @ without < 0.99  # the tail past the window still counts
    chunked = text_encoder.encode_chunked([head + " " + tail, "short"])
    assert chunked[0].shape[0] == len(windows) and chunked[1].shape == (1, 384)


def test_model_identity_is_stable_and_names_the_model(text_encoder) -> None:
    assert text_encoder.info.name == "all-MiniLM-L6-v2" and text_encoder.info.dim == 384
    assert text_encoder.info == SentenceTransformerEncoder(
        "sentence-transformers/all-MiniLM-L6-v2").info


def test_unknown_model_gives_a_clear_error(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="cannot load text model"):
        SentenceTransformerEncoder(str(tmp_path / "no-such-model"))


@pytest.fixture(scope="module")
def tag_space(text_encoder) -> TagSpaceModel:
    return TagSpaceModel(text_encoder)


def test_solo_piano_ranks_piano_above_techno(tag_space, musicnn) -> None:
    piano = musicnn.analyse(render(PIECES[0], 9.0, seed=3), SAMPLE_RATE).tags
    techno = musicnn.analyse(render(PIECES[1], 9.0, seed=3), SAMPLE_RATE).tags
    solo_piano, club = tag_space.embed_text(["solo piano", "driving techno for the club"])
    assert solo_piano.confident and "piano" in solo_piano.note
    assert solo_piano.vector @ piano > 2 * (solo_piano.vector @ techno)
    assert club.vector @ techno > 2 * (club.vector @ piano)
    assert solo_piano.vector.sum() == pytest.approx(1.0, abs=1e-5)


def test_queries_outside_the_tag_vocabulary_are_not_confident(tag_space) -> None:
    (query,) = tag_space.embed_text(["tax forms and spreadsheets"])
    assert not query.confident and "matches none" in query.note
    assert not query.vector.any()
