"""Musical descriptors (newwave.audio.descriptors): tempo, key and loudness measured on
synthesised audio whose tempo, key and level are known by construction, then their way
through indexing (one decode, old tracks caught up, a failed analysis recorded without
losing the embedding), the catalog (migration, staleness), the filters and the front ends.

Both analysers run every measurement test: librosa (the default) always, Essentia when it
is installed (``make test`` installs it; elsewhere the Essentia cases skip with a reason).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

from conftest import skip_or_fail
from newwave.audio.descriptors import (ESSENTIA_CONFIDENCE_SECONDS, PITCH_CLASSES, Analyser,
                                       default_analyser_name, load_analyser)
from newwave.catalog import Catalog, TrackRecord
from newwave.catalog.models import KEY_PATTERN, TrackDescriptors
from newwave.catalog.schema import MIGRATIONS, SCHEMA_VERSION

SR = 22050
ANALYSERS = ["librosa", "essentia"]


# -- synthesised audio with known tempo, key and level -----------------------------------


def _place(out: np.ndarray, sound: np.ndarray, seconds: float) -> None:
    start = int(round(seconds * SR))
    end = min(out.size, start + sound.size)
    if start < end:
        out[start:end] += sound[:end - start]


def _envelope(seconds: float, decay: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(int(seconds * SR)) / SR
    return t, np.exp(-t * decay)


def drums(bpm: float, seconds: float, seed: int = 0) -> np.ndarray:
    """A rock beat at ``bpm``: kick on beats 1 and 3, snare on 2 and 4, a hi-hat on every
    beat and a softer one halfway between (so the beat period, 60/bpm s, is the strongest
    period of the onsets, and half of it the next)."""
    rng = np.random.default_rng(seed)
    t, env = _envelope(0.3, 9)
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * env
    _, snare_env = _envelope(0.2, 18)
    snare = np.diff(rng.standard_normal(snare_env.size), prepend=0.0) * snare_env * 0.6
    _, hat_env = _envelope(0.05, 80)
    hat = np.diff(rng.standard_normal(hat_env.size), prepend=0.0) * hat_env * 0.3
    out = np.zeros(int(seconds * SR))
    beat = 60 / bpm
    for i in range(int(seconds / beat) + 1):
        _place(out, kick if i % 2 == 0 else snare, i * beat)
        _place(out, hat, i * beat)
        _place(out, 0.6 * hat, i * beat + beat / 2)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def _midi_hz(note: int) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _harmonic_tone(note: int, seconds: float) -> np.ndarray:
    """A note with 6 harmonics at 1/k amplitude (like a bright string), decaying."""
    t, env = _envelope(seconds, 1.2)
    f = _midi_hz(note)
    partials = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 7))
    return partials * env * np.minimum(1.0, t * 100)


# Four bars, bass note + triad per bar, and a melody of quarter notes over them (MIDI
# numbers: 57 = A3, 60 = C4, 69 = A4).
#   A minor: Am - Dm - E - Am (i iv V i, with the harmonic minor's G# in the E chord),
#            melody on A C B A / D C B A / G# B D E / C B A A.
#   E major: E - A - B - E (I IV V I), melody on E major's scale and chord tones.
#   Bb major: Bb - Eb - F - Bb (I IV V I).
KEYS = {
    ("A", "minor"): ([[45, 57, 60, 64], [50, 57, 62, 65], [52, 56, 59, 64], [45, 57, 60, 64]],
                     [69, 72, 71, 69, 74, 72, 71, 69, 68, 71, 74, 76, 72, 71, 69, 69]),
    ("E", "major"): ([[40, 52, 56, 59], [45, 57, 61, 64], [47, 59, 63, 66], [40, 52, 56, 59]],
                     [68, 71, 76, 73, 69, 73, 76, 81, 71, 75, 78, 75, 76, 71, 68, 64]),
    ("Bb", "major"): ([[46, 58, 62, 65], [51, 58, 63, 67], [53, 57, 60, 65], [46, 58, 62, 65]],
                      [70, 74, 77, 74, 75, 79, 82, 79, 72, 77, 81, 77, 74, 70, 65, 70]),
}


def progression(chords: list[list[int]], melody: list[int], seconds: float,
                bpm: float = 100) -> np.ndarray:
    out = np.zeros(int(seconds * SR))
    beat = 60 / bpm
    for bar in range(int(seconds / (4 * beat)) + 1):
        for note in chords[bar % len(chords)]:
            _place(out, 0.3 * _harmonic_tone(note, 4 * beat), bar * 4 * beat)
        for step in range(4):
            _place(out, 0.25 * _harmonic_tone(melody[(bar * 4 + step) % len(melody)], beat),
                   (bar * 4 + step) * beat)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def sine(freq: float, seconds: float, sample_rate: int, dbfs: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# -- the analysers ----------------------------------------------------------------------


@pytest.fixture(scope="module", params=ANALYSERS)
def analyser(request: pytest.FixtureRequest) -> Analyser:
    if request.param == "essentia":
        try:
            import essentia  # noqa: F401
        except ImportError:
            skip_or_fail("essentia is not installed (pip install -e '.[essentia]'; "
                         "`make test` installs it)")
    return load_analyser(request.param)


@pytest.mark.parametrize("bpm", [90, 120, 143])
def test_tempo_of_a_drum_pattern_within_two_percent(analyser: Analyser, bpm: int) -> None:
    measured = analyser.analyse(drums(bpm, 20.0), SR)
    # 90 BPM also repeats every 2 beats (45 BPM) and its off-beat hats every half beat
    # (180 BPM): the tempo prior must pick the beat, and 2% excludes both octaves.
    assert measured.bpm == pytest.approx(bpm, rel=0.02)
    assert measured.bpm_confidence is not None and measured.bpm_confidence >= 0.5
    assert measured.analyser == analyser.name and analyser.name in measured.analyser_version


@pytest.mark.parametrize(("tonic", "mode"), list(KEYS))
def test_key_and_mode_of_a_chord_progression(analyser: Analyser, tonic: str, mode: str) -> None:
    chords, melody = KEYS[(tonic, mode)]
    measured = analyser.analyse(progression(chords, melody, 20.0), SR)
    assert (measured.key, measured.mode) == (tonic, mode)
    assert measured.key_confidence is not None and measured.key_confidence >= 0.5


@pytest.mark.parametrize("sample_rate", [16000, 48000])
@pytest.mark.parametrize("dbfs", [0.0, -20.0])
def test_loudness_of_a_sine_follows_bs1770(analyser: Analyser, sample_rate: int,
                                           dbfs: float) -> None:
    # BS.1770: a 997 Hz sine at full scale in one channel reads -3.01 LUFS (mean square
    # 1/2 is -3.01 dB; the K-weighting gain at 997 Hz, +0.69 dB, cancels the -0.691 offset).
    # 20 dB quieter reads 20 LU lower. Tolerance 0.1 LU, EBU Tech 3341's for meters.
    measured = analyser.analyse(sine(997, 10.0, sample_rate, dbfs), sample_rate)
    assert measured.loudness_lufs == pytest.approx(-3.01 + dbfs, abs=0.1)


def test_silence_has_no_descriptors_and_noise_no_tempo(analyser: Analyser) -> None:
    silence = analyser.analyse(np.zeros(20 * SR, dtype=np.float32), SR)
    assert (silence.bpm, silence.bpm_confidence, silence.key, silence.mode,
            silence.key_confidence, silence.loudness_lufs) == (None,) * 6
    # White noise has onsets everywhere and a period nowhere.
    noise = np.random.default_rng(1).standard_normal(20 * SR).astype(np.float32) * 0.1
    measured = analyser.analyse(noise, SR)
    if analyser.name == "librosa":  # its pulse regularity on noise is ~0.06 < MIN_PULSE
        assert measured.bpm is None and measured.bpm_confidence is None
    else:  # Essentia may name a tempo, in the band its docs call "very low" (< 1 of 5.32)
        assert measured.bpm is None or measured.bpm_confidence < 1 / 5.32
    # 0.1 RMS is -20 dBFS. K-weighting's shelf adds ~4 dB above ~2 kHz, where ~85% of
    # white noise's power lies at 22 kHz (0-11 kHz): 10 log10(0.15 + 0.85 * 10^0.4) =
    # +3.6 dB; with BS.1770's -0.691 offset, about -17.1 LUFS.
    assert measured.loudness_lufs == pytest.approx(-17.1, abs=0.3)


def test_a_long_track_is_measured_on_its_middle(analyser: Analyser) -> None:
    # 100 s at 90 BPM, 130 s at 143 BPM, 100 s at 90 BPM: the middle 120 s excerpt lies
    # inside the 143 BPM part (it spans 105-225 s), so the answer is 143, not 90.
    signal = np.concatenate([drums(90, 100.0), drums(143, 130.0, seed=1), drums(90, 100.0)])
    measured = analyser.analyse(signal, SR)
    assert measured.bpm == pytest.approx(143, rel=0.02)


def test_short_audio_has_no_tempo_and_essentia_no_tempo_confidence(analyser: Analyser) -> None:
    assert analyser.analyse(drums(120, 2.0), SR).bpm is None  # under 3 s
    short = analyser.analyse(drums(120, ESSENTIA_CONFIDENCE_SECONDS - 2), SR)
    assert short.bpm == pytest.approx(120, rel=0.02)
    if analyser.name == "essentia":  # its confidence reads 0 here: unknown, not low
        assert short.bpm_confidence is None


def test_bad_waveforms_are_refused_with_the_reason(analyser: Analyser) -> None:
    with pytest.raises(ValueError, match=r"mono waveform \(1-d\), got shape \(2, 100\)"):
        analyser.analyse(np.zeros((2, 100), dtype=np.float32), SR)
    broken = drums(120, 5.0)
    broken[100:103] = np.nan
    with pytest.raises(ValueError, match="3 NaN or infinite samples"):
        analyser.analyse(broken, SR)


def test_default_analyser_is_essentia_exactly_when_it_is_installed() -> None:
    import importlib.util

    installed = importlib.util.find_spec("essentia") is not None
    assert default_analyser_name() == ("essentia" if installed else "librosa")


# -- the catalog -------------------------------------------------------------------------


def _record(path: str, content_hash: str = "h1") -> TrackRecord:
    return TrackRecord(path=path, root_id=None, content_hash=content_hash, size=1, mtime_ns=1,
                       format="flac", title=Path(path).stem)


def _descriptors(track_id: int, **values: object) -> TrackDescriptors:
    return TrackDescriptors(track_id=track_id, analyser="librosa", analyser_version="test",
                            **values)


def test_migration_adds_descriptors_to_an_existing_catalog(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)  # a catalog as the previous release left it (version 2)
    for version, script in enumerate(MIGRATIONS[:2]):
        conn.executescript(f"{script}\nPRAGMA user_version = {version + 1};")
    conn.execute("INSERT INTO tracks (path, content_hash, size, mtime_ns, format, title, "
                 "tags_source, added_at, updated_at) VALUES "
                 "('/m/old.flac', 'h1', 1, 1, 'flac', 'Old', 'tags', 0, 0)")
    conn.commit()
    conn.close()
    with Catalog(path) as catalog:
        (track,) = catalog.tracks()
        assert track.title == "Old"
        # Indexed before descriptors existed: due for analysis, and has none yet.
        assert [t.id for t in catalog.tracks_needing_descriptors("librosa")] == [track.id]
        assert catalog.descriptors() == {}
        catalog.put_descriptors(_descriptors(track.id, bpm=120.0, key="A", mode="minor"), "h1")
        assert catalog.descriptors()[track.id].key_name == "A minor"
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION == 3


def test_descriptors_follow_the_track_content_and_the_analyser(catalog: Catalog) -> None:
    first = catalog.save_track(_record("/m/a.flac"), None)
    second = catalog.save_track(_record("/m/b.flac"), None)
    # "Db" is stored in the catalog's one spelling of that pitch class, "C#".
    catalog.put_descriptors(_descriptors(first, bpm=128.0, bpm_confidence=0.9, key="Db",
                                         mode="major", key_confidence=0.8,
                                         loudness_lufs=-9.5), "h1")
    catalog.record_descriptor_failure(second, "h1", "librosa", "test", "ValueError: broken")
    stored = catalog.descriptors()
    assert list(stored) == [first]  # a failure is recorded, but has no values to read
    assert stored[first] == _descriptors(first, bpm=128.0, bpm_confidence=0.9, key="C#",
                                         mode="major", key_confidence=0.8, loudness_lufs=-9.5)
    assert catalog.descriptors([second, 999]) == {}
    assert catalog.tracks_needing_descriptors("librosa") == []  # neither is retried
    # Another analyser re-measures everything (one library, one analyser's values).
    assert [t.id for t in catalog.tracks_needing_descriptors("essentia")] == [first, second]
    assert catalog.descriptor_failures() == [("/m/b.flac", "librosa", "ValueError: broken")]
    # The file changed: its old values no longer count, and it is due again.
    catalog.save_track(_record("/m/a.flac", content_hash="h2"), None, track_id=first)
    assert catalog.descriptors() == {}
    assert [t.id for t in catalog.tracks_needing_descriptors("librosa")] == [first]
    # Deleting a track deletes its descriptors (ON DELETE CASCADE).
    with catalog.transaction() as conn:
        conn.execute("DELETE FROM tracks WHERE id = ?", (second,))
        assert conn.execute("SELECT count(*) FROM descriptors WHERE track_id = ?",
                            (second,)).fetchone()[0] == 0


# -- indexing ------------------------------------------------------------------------------


@pytest.fixture
def models(tmp_path: Path, text_encoder, musicnn):
    from newwave.config import Settings
    from newwave.models.registry import ActiveModels

    active = ActiveModels(Settings.load(data_dir=tmp_path / "data"))
    active.text_encoder, active.audio_model = text_encoder, musicnn
    return active


def test_a_failed_analysis_is_recorded_and_keeps_the_embedding(
        catalog: Catalog, tmp_path: Path, models) -> None:
    from newwave.indexer import Embedder
    from newwave.library import Scanner

    folder = tmp_path / "music"
    folder.mkdir()
    soundfile.write(folder / "good.wav", drums(120, 6.0), SR)
    broken = drums(120, 6.0)
    broken[SR:SR + 40] = np.nan  # a corrupt float file: decodes, but has no tempo
    soundfile.write(folder / "broken.wav", broken, SR, subtype="FLOAT")
    Scanner(catalog).scan(folder)
    report = Embedder(catalog, models, analyser="librosa").run()  # in-process path
    # Both are embedded (decoding keeps NaN samples, so the broken file's vectors are NaN:
    # a separate matter for the decoder); only the analysis refuses the broken one.
    assert (report.audio_embedded, report.audio_failed) == (2, 0)
    assert (report.descriptors_measured, report.descriptors_failed) == (1, 1)
    ids = {Path(t.path).name: t.id for t in catalog.tracks()}
    audio = next(s for s in catalog.vector_spaces() if s.kind == "audio")
    assert set(catalog.vectors(audio).track_ids.tolist()) == set(ids.values())
    assert list(catalog.descriptors()) == [ids["good.wav"]]
    assert catalog.descriptors()[ids["good.wav"]].bpm == pytest.approx(120, rel=0.02)
    ((path, analyser, error),) = catalog.descriptor_failures()
    assert path.endswith("broken.wav") and analyser == "librosa"
    assert "NaN or infinite samples" in error and catalog.embed_failures() == []
    again = Embedder(catalog, models, analyser="librosa").run()  # not retried
    assert (again.audio_embedded, again.descriptors_measured, again.descriptors_failed) == \
        (0, 0, 0)


def test_update_stores_descriptors_and_catches_up_old_tracks(
        tmp_path: Path, synthetic_library_template: Path, text_encoder, musicnn) -> None:
    import shutil

    from newwave.config import Settings
    from newwave.models.registry import ActiveModels
    from newwave.service import NewWave

    folder = tmp_path / "library"
    shutil.copytree(synthetic_library_template, folder)
    settings = Settings.load(data_dir=tmp_path / "data")
    models = ActiveModels(settings)
    models.text_encoder, models.audio_model = text_encoder, musicnn
    with NewWave.open(settings, models=models) as service:  # decodes in worker processes
        report = service.update([folder])
        assert (report.embedded.audio_embedded, report.embedded.descriptors_measured) == (6, 6)
        by_title = {t.title: t.id for t in service.catalog.tracks()}
        stored = service.catalog.descriptors()
        assert set(stored) == set(by_title.values())
        assert {d.analyser for d in stored.values()} == {default_analyser_name()}
        # newwave.demo.synth, 4 s each: Warehouse Pulse is a 128 BPM kick pattern; Open
        # Road strums G major chords at 100 BPM; Drift holds A, E, A, C, E (A minor).
        assert stored[by_title["Warehouse Pulse"]].bpm == pytest.approx(128, rel=0.02)
        assert stored[by_title["Open Road"]].bpm == pytest.approx(100, rel=0.02)
        assert stored[by_title["Open Road"]].key_name == "G major"
        assert stored[by_title["Drift"]].key_name == "A minor"
        # A catalog indexed before descriptors existed has vectors and no descriptors:
        # the next update measures them, without embedding anything again.
        with service.catalog.transaction() as conn:
            conn.execute("DELETE FROM descriptors")
        again = service.update([folder])
        assert (again.embedded.audio_embedded, again.embedded.descriptors_measured) == (0, 6)
        assert service.catalog.descriptors() == stored


# -- the front ends: CLI and API on the live server's indexed library ---------------------

# The live library is newwave.demo.synth's, 4 s per piece. What both analysers measure on
# it (and why, by construction):
#   Rainy Window     ~132 BPM (its arpeggio: eighth notes at 66 BPM), A minor (the 4 s hold
#                    the first chord, Am)
#   Warehouse Pulse  ~128 BPM (a kick on every beat at 128)
#   Open Road        ~100 BPM, G major (strummed G, C, D chords at 100 BPM)
#   Drift            A minor (a pad on A, E, A, C, E); no beat
# So 120-135 BPM lets through exactly Rainy Window and Warehouse Pulse, 95-104 BPM only
# Open Road, "A minor" Rainy Window and Drift, "G" (either mode) Open Road.
BPM_120_135 = {"Rainy Window", "Warehouse Pulse"}
EVERY_TRACK = "techno drums"  # words of the tag vocabulary: the sound search ranks all 6


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NEWWAVE_DATA_DIR": str(data_dir), "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "newwave.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600)


def _table(out: str) -> dict[str, list[str]]:
    """Title -> cells [rank, id, title, artist, album, bpm, key, score, why] of a result."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃").split("│")]
        if len(cells) >= 8 and cells[0].isdigit():
            rows[cells[2]] = cells
    return rows


def test_cli_search_filters_and_shows_bpm_and_key(live_server) -> None:
    _, data_dir, _ = live_server
    everything = ["search", EVERY_TRACK, "--mode", "audio", "--limit", "100"]
    fast = _cli(data_dir, *everything, "--bpm-min", "120", "--bpm-max", "135")
    assert fast.returncode == 0, fast.stderr
    rows = _table(fast.stdout)
    assert set(rows) == BPM_120_135
    assert 125 <= int(rows["Warehouse Pulse"][5]) <= 131 and rows["Rainy Window"][6] == "A minor"
    minor = _cli(data_dir, *everything, "--key", "Am")
    assert set(_table(minor.stdout)) == {"Rainy Window", "Drift"}, minor.stdout + minor.stderr
    nonsense = _cli(data_dir, *everything, "--key", "H minor")
    assert nonsense.returncode == 1
    assert "'H minor' is not a key; give a tonic A-G" in nonsense.stderr


def test_api_filters_on_descriptors_and_returns_them(live_server) -> None:
    url, _, _ = live_server
    with httpx.Client(base_url=url, timeout=120) as client:
        def titles(**params: object) -> set[str]:
            answer = client.get("/search/audio", params={"q": EVERY_TRACK, "limit": 100,
                                                         **params})
            assert answer.status_code == 200, answer.text
            return {hit["track"]["title"] for hit in answer.json()["hits"]}

        assert titles(bpm_min=120, bpm_max=135) == BPM_120_135
        assert titles(bpm_min=95, bpm_max=104) == {"Open Road"}
        assert titles(key="A minor") == titles(key="am") == {"Rainy Window", "Drift"}
        assert titles(key="G") == {"Open Road"}
        assert titles(key="Gb") == set()  # no track is in F# / Gb
        refused = client.get("/search/audio", params={"q": EVERY_TRACK, "key": "A dorian"})
        assert refused.status_code == 422 and "key" in refused.json()["error"]
        openapi = client.get("/openapi.json").json()["paths"]["/search/audio"]["get"]
        (key,) = [p for p in openapi["parameters"] if p["name"] == "key"]
        assert key["schema"]["anyOf"][0]["pattern"] == KEY_PATTERN  # clients can check first

        hits = client.get("/search/audio",
                          params={"q": EVERY_TRACK, "limit": 100}).json()["hits"]
        road = next(h["track"] for h in hits if h["track"]["title"] == "Open Road")
        measured = road["descriptors"]
        assert measured["bpm"] == pytest.approx(100, rel=0.02)
        assert (measured["key"], measured["mode"]) == ("G", "major")
        assert measured["analyser"] == default_analyser_name() and measured["loudness_lufs"] < 0
        assert client.get(f"/tracks/{road['id']}").json()["descriptors"] == measured
        with client.stream("GET", "/search/combined", params={"q": "guitar", "limit": 6}) as r:
            lines = [line for line in r.iter_lines() if '"type": "hit"' in line]
        assert any('"descriptors": {"bpm"' in line for line in lines)


def test_pitch_class_spellings_are_the_catalogs() -> None:
    from newwave.catalog.models import KEY_NAMES

    assert PITCH_CLASSES == KEY_NAMES  # the analyser and the catalog spell keys alike
