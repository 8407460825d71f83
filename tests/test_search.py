from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from newwave.audio import decode
from newwave.audio.encode import write_audio
from newwave.errors import InvalidInput
from newwave.catalog import Catalog, TrackFilter
from newwave.config import Settings
from newwave.models.registry import ActiveModels
from newwave.index import IndexSet
from newwave.search import SearchError
from newwave.service import NewWave


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, synthetic_library_template: Path, text_encoder, musicnn):
    """The synthetic library, scanned and embedded once for this module."""
    base = tmp_path_factory.mktemp("search")
    library = base / "library"
    shutil.copytree(synthetic_library_template, library)
    settings = Settings.load(data_dir=base / "data")
    models = ActiveModels(settings)
    models.text_encoder, models.audio_model = text_encoder, musicnn
    catalog = Catalog(settings.catalog_path)
    NewWave(settings, catalog, models).update([library])
    yield catalog, models, settings, library
    catalog.close()


@pytest.fixture
def engine(indexed) -> NewWave:
    """The service over the indexed library (it shares the module's catalog)."""
    catalog, models, settings, _ = indexed
    return NewWave(settings, catalog, models)


def titles(result) -> list[str]:
    return [hit.track.title for hit in result.hits]


def test_audio_mode_finds_by_sound(engine: NewWave) -> None:
    piano = engine.search("solo piano", "audio", limit=3)
    assert titles(piano)[0] == "Rainy Window"
    assert "piano" in piano.hits[0].why and piano.hits[0].scores["sound"] > 0.3
    techno = engine.search("driving techno for the club", "audio", limit=2)
    assert titles(techno) == ["Warehouse Pulse", "Breakbeat Rush"]
    assert techno.hits[0].rank == 1 and techno.hits[0].score >= techno.hits[1].score


def test_audio_mode_says_when_the_query_is_outside_its_vocabulary(engine: NewWave) -> None:
    result = engine.search("tax forms and spreadsheets", "audio")
    assert result.hits == []
    assert "sound: not understood by the sound model: 'tax forms', 'spreadsheets'" in result.notes


def test_lyrics_mode_finds_by_meaning(engine: NewWave) -> None:
    assert titles(engine.search("leaving my hometown behind", "lyrics", limit=1)) == ["Open Road"]
    assert titles(engine.search("a violin mourning lost love", "lyrics", limit=1)) == \
        ["Midnight Strings"]
    # Only tracks with lyrics can match lyrics.
    assert len(engine.search("anything at all", "lyrics", limit=10).hits) == 3


def test_combined_mode_fuses_and_lets_tracks_without_lyrics_compete(engine: NewWave) -> None:
    techno = engine.search("driving techno for the club", "combined", limit=3)
    assert titles(techno)[0] == "Warehouse Pulse"  # no lyrics, best sound
    assert any("reciprocal-rank fusion" in note for note in techno.notes)
    home = engine.search("song about leaving home", "combined", limit=3)
    assert titles(home)[0] == "Open Road"
    sad = engine.search("sad song about lost love, strings", "combined", limit=2)
    top = sad.hits[0]
    assert top.track.title == "Midnight Strings"
    assert {"sound", "lyrics", "rrf"} <= set(top.scores)


def test_filters_and_paging(engine: NewWave) -> None:
    by_artist = engine.search("music", "combined", limit=10, filters=TrackFilter(artist="unit 7"))
    assert set(titles(by_artist)) == {"Warehouse Pulse", "Breakbeat Rush"}
    with_lyrics = engine.search("music", "combined", limit=10,
                                filters=TrackFilter(has_lyrics=True))
    assert set(titles(with_lyrics)) == {"Rainy Window", "Open Road", "Midnight Strings"}
    assert engine.search("piano", "audio", filters=TrackFilter(year_max=2000)).hits == []
    assert len(engine.search("piano", "audio", limit=10,
                             filters=TrackFilter(min_duration=1, max_duration=10)).hits) == 6
    assert engine.search("piano", "audio", filters=TrackFilter(genre="folk")).hits[0] \
        .track.title == "Open Road"
    everything = engine.search("calm music", "combined", limit=6)
    pages = [engine.search("calm music", "combined", limit=2, offset=o) for o in (0, 2, 4)]
    assert [t for page in pages for t in titles(page)] == titles(everything)
    assert [h.rank for h in pages[1].hits] == [3, 4]
    for bad in ({"limit": 0}, {"limit": 5000}, {"offset": -1}):
        with pytest.raises(SearchError):
            engine.search("piano", "audio", **bad)
    with pytest.raises(SearchError, match="empty"):
        engine.search("   ")
    with pytest.raises(SearchError, match="unknown mode"):
        engine.search("piano", "video")  # type: ignore[arg-type]


def test_similar_and_by_audio(engine: NewWave, indexed, tmp_path: Path) -> None:
    catalog, _, _, library = indexed
    techno = catalog.find_tracks("Warehouse Pulse")[0]
    similar = engine.similar(techno.id, limit=5)
    assert "Warehouse Pulse" not in titles(similar)
    assert titles(similar)[0] == "Breakbeat Rush"
    assert "sounds like Warehouse Pulse" in similar.hits[0].why
    filtered = engine.similar(techno.id, filters=TrackFilter(artist="mira vale"))
    assert set(titles(filtered)) == {"Drift", "Rainy Window"}
    with pytest.raises(SearchError, match="no track with id"):
        engine.similar(99999)

    snippet = decode(next(library.rglob("*Warehouse Pulse.mp3")), 16000, offset_seconds=0.5,
                     max_seconds=3.0)
    recording, too_short = tmp_path / "recording.wav", tmp_path / "short.wav"
    write_audio(recording, snippet, 16000)
    write_audio(too_short, snippet[:8000], 16000)
    recorded = engine.by_audio(recording, limit=2)
    assert titles(recorded)[0] == "Warehouse Pulse"
    with pytest.raises(InvalidInput, match="at least 3 s"):
        engine.by_audio(too_short)


def test_index_drift_is_detected_and_repaired(indexed, tmp_path: Path) -> None:
    catalog, models, settings, _ = indexed
    index = IndexSet(catalog, tmp_path / "indexes", models.space_info).index("audio")
    assert index.size == 6 and index.check(catalog) == (0, 0)
    # A crash after a catalog write but before the index write: vectors gone and new.
    victim = catalog.find_tracks("Drift")[0]
    space = index.space
    saved = catalog.vectors(space, [victim.id])
    with catalog.transaction() as conn:
        conn.execute("DELETE FROM vectors WHERE space_id = ? AND track_id = ?",
                     (space.id, victim.id))
    assert index.check(catalog) == (0, 1)
    reopened = IndexSet(catalog, tmp_path / "indexes", models.space_info).index("audio")  # syncs
    assert reopened.size == 5 and reopened.check(catalog) == (0, 0)
    catalog.put_vectors(space, victim.id, victim.content_hash, saved.matrix)
    assert reopened.check(catalog) == (1, 0)
    report = reopened.sync(catalog)
    assert (report.added, report.removed) == (1, 0) and reopened.size == 6
    # Torn or missing index files are rebuilt from the catalog.
    reopened.manifest_path.write_bytes(b"garbage")
    assert IndexSet(catalog, tmp_path / "indexes", models.space_info).index("audio").size == 6
    reopened.index_path.unlink()
    assert IndexSet(catalog, tmp_path / "indexes", models.space_info).index("audio").size == 6


def test_approximate_index_past_the_threshold(tmp_path: Path) -> None:
    """IVF kicks in past ``approximate_from`` vectors, keeps high recall against exact
    search, and still takes incremental updates."""
    from newwave.catalog import TrackRecord
    from newwave.index import VectorIndex, build_index, vector_ids

    rng = np.random.default_rng(0)
    centers = rng.standard_normal((40, 32))
    with Catalog(tmp_path / "c.sqlite") as catalog:
        space = catalog.vector_space("audio", "synthetic", "v1", 32)
        vectors = {}
        for i in range(3000):
            track_id = catalog.save_track(TrackRecord(
                path=f"/m/{i}.flac", root_id=None, content_hash=str(i), size=1, mtime_ns=1,
                format="flac", title=str(i)), None)
            vector = centers[i % 40] + 0.3 * rng.standard_normal(32)
            vectors[track_id] = (vector / np.linalg.norm(vector)).astype(np.float32)
            catalog.put_vectors(space, track_id, str(i), vectors[track_id])
        index = VectorIndex(space, tmp_path / "idx", approximate_from=1000)
        assert index.sync(catalog).rebuilt and index.approximate and index.size == 3000
        ids = np.array(list(vectors), dtype=np.int64)
        exact = build_index(np.stack(list(vectors.values())), vector_ids(ids, 0 * ids),
                            approximate=False)
        queries = (centers[:20] + 0.3 * rng.standard_normal((20, 32))).astype(np.float32)
        recall = np.mean([len(set(index.search(q, 10)[0]) & set(exact.search(q[None], 10)[1][0]))
                          / 10 for q in queries])
        assert recall >= 0.9
        removed = next(iter(vectors))
        with catalog.transaction() as conn:
            conn.execute("DELETE FROM vectors WHERE track_id = ?", (removed,))
        report = index.sync(catalog)
        assert (report.removed, report.rebuilt, index.size) == (1, False, 2999)
        assert VectorIndex(space, tmp_path / "idx", approximate_from=1000).approximate


def test_combined_mode_uses_a_configured_fusion_model(indexed, tmp_path: Path) -> None:
    """A fusion model trained on this library's vectors is loaded from the settings and
    re-ranks the combined candidates; one trained on other spaces is refused."""
    from dataclasses import replace

    from newwave.config import ConfigError
    from newwave.demo.synth import PIECES
    from newwave.models.fusion import FusionConfig
    from newwave.train.fusion import FusionExamples, train_fusion

    catalog, models, settings, _ = indexed
    engine = NewWave(settings, catalog, models)
    tracks = {t.title: t for t in catalog.tracks()}
    queries = [(p.description, tracks[p.title].id) for p in PIECES] * 20
    track_ids = [t for _, t in queries]
    audio = engine.indexes.track_vectors("audio-text", track_ids)
    lyrics = engine.indexes.track_vectors("lyrics", track_ids)
    q_audio = np.stack([q.vector for q in engine.queries.sound_model.embed_text(
        [q for q, _ in queries])])
    examples = FusionExamples(
        q_audio, models.text_encoder.encode([q for q, _ in queries]),
        np.stack([audio[t] for t in track_ids]),
        np.stack([lyrics.get(t, np.zeros(384, np.float32)) for t in track_ids]),
        np.array([t in lyrics for t in track_ids], dtype=np.float32))
    config = FusionConfig(audio_dim=100, text_dim=384,
                          audio_space=str(models.audio_model.spaces["audio-text"]),
                          text_space=str(models.text_encoder.info), hidden=64, out=32)
    model, _ = train_fusion(examples, config, epochs=30, batch_size=6)
    path = tmp_path / "fusion.pt"
    model.save(path)

    fused_models = ActiveModels(replace(settings, fusion_model=str(path)))
    fused_models.text_encoder, fused_models.audio_model = models.text_encoder, models.audio_model
    fused = NewWave(settings, catalog, fused_models)
    result = fused.search("driving four-on-the-floor techno for the dancefloor", "combined",
                          limit=3)
    assert titles(result)[0] == "Warehouse Pulse"
    assert "fusion" in result.hits[0].scores
    assert not any("reciprocal-rank" in note for note in result.notes)

    replace_config = FusionConfig(**{**vars(config), "text_space": "other-model@v9 (384-d)"})
    from newwave.models.fusion import FusionModel
    FusionModel(replace_config).save(tmp_path / "other.pt")
    other = ActiveModels(replace(settings, fusion_model=str(tmp_path / "other.pt")))
    other.text_encoder, other.audio_model = models.text_encoder, models.audio_model
    with pytest.raises(ConfigError, match="retrain it"):
        NewWave(settings, catalog, other).search("techno", "combined")
