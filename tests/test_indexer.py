from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from newwave.catalog import Catalog, VectorSpaceMismatch
from newwave.config import Settings
from newwave.demo.tagging import TagValues, write_tags
from newwave.indexer import Embedder, EmbedProgress
from newwave.library import Scanner
from newwave.models.registry import ActiveModels


@pytest.fixture
def models(tmp_path: Path, text_encoder, musicnn) -> ActiveModels:
    """The configured defaults, reusing the session's loaded models."""
    active = ActiveModels(Settings.load(data_dir=tmp_path / "data"))
    active.text_encoder = text_encoder
    active.audio_model = musicnn
    return active


def spaces(catalog: Catalog) -> dict[str, object]:
    return {s.kind: s for s in catalog.vector_spaces()}


def test_embeds_audio_and_lyrics_of_every_track_once(catalog: Catalog, synthetic_library: Path,
                                                     models: ActiveModels) -> None:
    Scanner(catalog).scan(synthetic_library)
    report = Embedder(catalog, models).run()
    assert (report.audio_embedded, report.lyrics_embedded, report.audio_failed) == (6, 3, 0)
    by_kind = spaces(catalog)
    assert by_kind["audio-text"].model == "musicnn-tags" and by_kind["audio-text"].dim == 100
    assert by_kind["audio"].dim == 400 and by_kind["lyrics"].dim == 384
    audio = catalog.vectors(by_kind["audio"])
    assert sorted(audio.track_ids.tolist()) == sorted(t.id for t in catalog.tracks())
    assert np.allclose(np.linalg.norm(audio.matrix, axis=1), 1.0, atol=1e-5)
    lyrics = catalog.vectors(by_kind["lyrics"])
    assert len(set(lyrics.track_ids.tolist())) == 3
    again = Embedder(catalog, models).run()
    assert (again.audio_embedded, again.lyrics_embedded) == (0, 0)


def test_changed_tracks_are_re_embedded(catalog: Catalog, synthetic_library: Path,
                                        models: ActiveModels) -> None:
    scanner = Scanner(catalog)
    scanner.scan(synthetic_library)
    Embedder(catalog, models).run()
    write_tags(next(synthetic_library.rglob("*Drift.m4a")), TagValues(lyrics="new words here"))
    scanner.scan(synthetic_library)
    report = Embedder(catalog, models).run()
    assert (report.audio_embedded, report.lyrics_embedded) == (1, 1)


def test_undecodable_audio_is_recorded_and_not_retried(catalog: Catalog, synthetic_library: Path,
                                                       models: ActiveModels) -> None:
    broken = next(synthetic_library.rglob("*Rainy Window.flac"))
    broken.write_bytes(broken.read_bytes()[:30000])  # header intact, stream cut short
    Scanner(catalog).scan(synthetic_library)
    report = Embedder(catalog, models).run()
    assert (report.audio_embedded, report.audio_failed) == (5, 1)
    failures = catalog.embed_failures()
    assert len(failures) == 2 and all("Rainy Window" in path for path, _, _ in failures)
    assert Embedder(catalog, models).run().audio_failed == 0


def test_interrupted_embedding_resumes(catalog: Catalog, synthetic_library: Path,
                                       models: ActiveModels) -> None:
    Scanner(catalog).scan(synthetic_library)

    def stop(progress: EmbedProgress) -> None:
        if progress.stage == "audio" and progress.done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Embedder(catalog, models, on_progress=stop).run()
    assert catalog.jobs(kind="embed")[-1].status == "interrupted"
    assert Embedder(catalog, models).run().audio_embedded == 4


def test_vectors_of_different_models_are_never_mixed(catalog: Catalog, synthetic_library: Path,
                                                     models: ActiveModels) -> None:
    Scanner(catalog).scan(synthetic_library)
    Embedder(catalog, models).run()
    track = catalog.tracks()[0]
    lyrics_space = spaces(catalog)["lyrics"]
    with pytest.raises(VectorSpaceMismatch, match="never mixed"):
        catalog.put_vectors(lyrics_space, track.id, "x", np.ones((1, 1024), dtype=np.float32))
    with pytest.raises(VectorSpaceMismatch, match="new version"):
        catalog.vector_space("lyrics", lyrics_space.model, lyrics_space.version, 1024)
    # Another model gets its own space; the first model's vectors stay as they were.
    other = catalog.vector_space("lyrics", "bge-m3", "v1", 1024)
    assert other.id != lyrics_space.id and catalog.vectors(other).matrix.shape == (0, 1024)
