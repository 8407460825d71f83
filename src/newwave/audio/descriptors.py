"""Musical descriptors of a track, measured at index time from the waveform already
decoded for embedding: tempo (BPM, with a confidence), key and mode (with a confidence)
and integrated loudness (ITU-R BS.1770-4, the measure EBU R128 uses).

Two analysers share one interface, ``analyse(waveform, sample_rate) -> Descriptors`` on a
mono float32 waveform:

``librosa`` (the default; librosa is ISC and pyloudnorm MIT, like NewWave)
    *Tempo*: librosa's onset-strength envelope (86 frames/s), autocorrelated over the
    excerpt; among the autocorrelation's peaks between 40 and 240 BPM, the one with the
    largest value times a log-normal tempo prior (centred on 120 BPM, one octave wide: the
    prior librosa and Ellis (2007) use, after the ~120 BPM preferred tempo of listeners).
    The prior settles octave errors: a click track at 90 BPM correlates as well at 45 BPM,
    and the prior picks 90. The peak lag is refined by parabolic interpolation, so the BPM
    is not quantised to whole frames (at 86 frames/s a whole frame is 2% at 140 BPM).
    *bpm_confidence*: the normalised autocorrelation at that lag (0: no repetition at
    that period, 1: every onset recurs exactly one beat later): how regular the pulse is.
    *Key*: a constant-Q chromagram (librosa, tuning estimated), summed over the excerpt,
    correlated with the 24 rotations of the Krumhansl-Kessler probe-tone profiles
    (Krumhansl-Schmuckler key finding). Krumhansl-Kessler rather than Temperley's 1999
    profiles: both name all 24 keys of synthesised cadences (docs/benchmarks.md), but on a
    real soundtrack (Warzone 2100's) Temperley's, near zero on chromatic tones, read 7 of
    29 tracks as C# (D-flat) major where Krumhansl-Kessler's read 6 of those as F minor
    (whose flat-sixth chord is D-flat major), and agree on the tonic with Essentia's
    independent estimate less often (8 of 29 tracks, against 11). Krumhansl-Kessler's
    profiles come from listeners' ratings of heard tones, closer to what a chromagram of a
    recording holds than note counts from scores.
    *key_confidence*: that best Pearson correlation (clipped to 0..1), the definition
    Essentia's key "strength" uses.
    *Loudness*: pyloudnorm's BS.1770-4 integrated (gated) loudness over the whole track.

``essentia`` (used automatically when ``essentia`` is importable: ``newwave[essentia]``;
Essentia is AGPL-3.0, so it is never required)
    RhythmExtractor2013 (multifeature; its confidence 0..5.32 scaled to 0..1, None on
    excerpts under 10 s, where it always reads 0), KeyExtractor (default profile),
    LoudnessEBUR128, on the excerpt resampled to 44.1 kHz (the rate RhythmExtractor2013 is
    built for).

Both analysers record their name and version in each result, and a library re-analyses
its tracks when the analyser changes, so one library's values come from one analyser.

**Excerpt.** Tempo and key are measured on the middle ``EXCERPT_SECONDS`` (120 s) of a
longer track, loudness on the whole track. Tempo and key cost time in proportion to the
length (a 60-minute mix would take tens of seconds and a lot of memory); two minutes from
the middle are the body of a song, where intros and outros, often without a beat or a
clear harmony, do not reach. Integrated loudness is defined over the whole programme, and
is cheap (docs/benchmarks.md: a 10-minute track costs 1.5 times a 3-minute one).

**Loudness of the mono downmix.** The waveform is the mono average the models see, so the
value is the BS.1770 loudness of that single channel: a full-scale 997 Hz sine reads
-3.01 LUFS. For a stereo file this is about 3 dB below what a meter reads on the two
channels (exactly 3.01 dB for identical channels, more for wide stereo), and content above
half the decoding rate (8 kHz for musicnn's 16 kHz) is not heard.

**Not measured: energy and danceability.** Neither has a standard definition that can be
computed and checked: "energy" and "danceability" scores (Spotify's, Essentia's
Danceability) are uncalibrated model outputs or heuristic blends of loudness, onset rate
and pulse regularity. NewWave stores what it measures and can test: loudness and
bpm_confidence (pulse regularity) are the measurable parts of both.

Every descriptor is None when it is undefined for the audio: silence has no tempo, key or
loudness; a waveform under 3 s has no tempo or key; audio without a regular pulse (noise,
a drone: bpm_confidence under ``MIN_PULSE``) has no tempo.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib.metadata import version
from typing import Literal, Protocol

import numpy as np

Mode = Literal["major", "minor"]
AnalyserName = Literal["librosa", "essentia"]

# One spelling per pitch class (the catalog normalises every other spelling to these).
PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
EXCERPT_SECONDS = 120.0
MIN_SECONDS = 3.0  # fewer than ~4 beats at 80 BPM: no tempo or key worth reporting
# Below this pulse regularity (either analyser's 0..1 confidence) there is no beat to
# report: white noise scores 0.06-0.08, a steady tone 0, the sparest real music ~0.2.
MIN_PULSE = 0.1
TUNING_SECONDS = 30.0
ANALYSIS_RATE = 22050  # librosa's onset and chroma defaults are tuned for this rate
ESSENTIA_RATE = 44100  # RhythmExtractor2013 expects 44.1 kHz
MIN_BPM, MAX_BPM = 40.0, 240.0
PRIOR_BPM, PRIOR_OCTAVES = 120.0, 1.0
ONSET_HOP = 256  # 86 onset frames per second at 22050 Hz
CHROMA_HOP = 4096  # ~5 chroma frames per second: key is a slow property
CHROMA_BINS = 36  # three constant-Q bins per semitone, folded into 12 pitch classes
ESSENTIA_MAX_CONFIDENCE = 5.32  # RhythmExtractor2013's multifeature confidence ranges 0..5.32
# Its confidence ignores the beats of the first 5 s and reads 0 on shorter excerpts than this.
ESSENTIA_CONFIDENCE_SECONDS = 10.0
# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class Descriptors:
    """What an analyser measured on one waveform (None: undefined for this audio).

    ``bpm_confidence`` and ``key_confidence`` are 0..1 (see the module docstring for how
    each analyser defines them; None: the analyser cannot tell); ``key`` is a tonic spelled
    as in ``PITCH_CLASSES``.
    """

    bpm: float | None
    bpm_confidence: float | None
    key: str | None
    mode: Mode | None
    key_confidence: float | None
    loudness_lufs: float | None
    analyser: AnalyserName
    analyser_version: str


@dataclass(frozen=True)
class Analysis:
    """One analysis: its descriptors, or why it failed (the error's type and message)."""

    descriptors: Descriptors | None
    error: str | None = None


class Analyser(Protocol):
    name: AnalyserName
    version: str

    def analyse(self, waveform: np.ndarray, sample_rate: int) -> Descriptors: ...


def default_analyser_name() -> AnalyserName:
    """``essentia`` when it is installed, else ``librosa`` (checked without importing)."""
    return "essentia" if importlib.util.find_spec("essentia") is not None else "librosa"


def analyser_version(name: AnalyserName) -> str:
    """The versions of the libraries behind an analyser (read without importing them)."""
    if name == "essentia":
        return f"essentia {version('essentia')}"
    return f"librosa {version('librosa')}, pyloudnorm {version('pyloudnorm')}"


def load_analyser(name: AnalyserName | None = None) -> Analyser:
    """The named analyser (default: :func:`default_analyser_name`). Imports its libraries."""
    name = name or default_analyser_name()
    if name == "essentia":
        return EssentiaAnalyser()
    if name == "librosa":
        return LibrosaAnalyser()
    raise ValueError(f"unknown descriptor analyser {name!r}; choose 'librosa' or 'essentia'")


class LibrosaAnalyser:
    """The default analyser: librosa for tempo and key, pyloudnorm for loudness."""

    name: AnalyserName = "librosa"

    def __init__(self) -> None:
        import librosa  # noqa: F401 (imported here: it takes a second; fail early if absent)
        import pyloudnorm  # noqa: F401

        self.version = analyser_version(self.name)

    def analyse(self, waveform: np.ndarray, sample_rate: int) -> Descriptors:
        signal = _checked(waveform, sample_rate)
        excerpt = _resample(_middle(signal, sample_rate), sample_rate, ANALYSIS_RATE)
        bpm, bpm_confidence = _tempo(excerpt)
        key, mode, key_confidence = _key(excerpt)
        return Descriptors(bpm=bpm, bpm_confidence=bpm_confidence, key=key, mode=mode,
                           key_confidence=key_confidence,
                           loudness_lufs=_loudness(signal, sample_rate),
                           analyser=self.name, analyser_version=self.version)


class EssentiaAnalyser:
    """The optional analyser: Essentia's RhythmExtractor2013, KeyExtractor, LoudnessEBUR128."""

    name: AnalyserName = "essentia"

    def __init__(self) -> None:
        import essentia

        essentia.log.infoActive = False  # else importing essentia.standard prints INFO lines
        import essentia.standard as standard

        self._standard = standard
        self.version = analyser_version(self.name)

    def analyse(self, waveform: np.ndarray, sample_rate: int) -> Descriptors:
        signal = _checked(waveform, sample_rate)
        excerpt = _resample(_middle(signal, sample_rate), sample_rate, ESSENTIA_RATE)
        audible = excerpt.size >= MIN_SECONDS * ESSENTIA_RATE and np.any(excerpt)
        bpm, bpm_confidence = self._tempo(excerpt) if audible else (None, None)
        key, mode, key_confidence = self._key(excerpt) if audible else (None, None, None)
        return Descriptors(bpm=bpm, bpm_confidence=bpm_confidence, key=key, mode=mode,
                           key_confidence=key_confidence,
                           loudness_lufs=self._loudness(signal, sample_rate),
                           analyser=self.name, analyser_version=self.version)

    def _tempo(self, excerpt: np.ndarray) -> tuple[float | None, float | None]:
        found, _, confidence, _, _ = self._standard.RhythmExtractor2013(
            method="multifeature", minTempo=int(MIN_BPM), maxTempo=int(MAX_BPM))(excerpt)
        if not MIN_BPM <= found <= MAX_BPM:  # on near-silence it can answer 738 BPM
            return None, None
        if excerpt.size < ESSENTIA_CONFIDENCE_SECONDS * ESSENTIA_RATE:
            return float(found), None  # its confidence is always 0 here: unknown, not low
        scaled = _unit(confidence / ESSENTIA_MAX_CONFIDENCE)
        return (float(found), scaled) if scaled >= MIN_PULSE else (None, None)

    def _key(self, excerpt: np.ndarray) -> tuple[str | None, Mode | None, float | None]:
        tonic, scale, strength = self._standard.KeyExtractor(sampleRate=ESSENTIA_RATE)(excerpt)
        if strength <= 0:
            return None, None, None
        return PITCH_CLASSES[_pitch_class(tonic)], scale, _unit(strength)

    def _loudness(self, signal: np.ndarray, sample_rate: int) -> float | None:
        if signal.size < 0.4 * sample_rate:  # shorter than one BS.1770 gating block
            return None
        # LoudnessEBUR128 takes stereo: the mono signal in both channels counts twice in
        # BS.1770's channel sum (+3.01 dB), taken off to measure the one mono channel.
        stereo = np.repeat(signal[:, None], 2, axis=1)
        _, _, integrated, _ = self._standard.LoudnessEBUR128(
            sampleRate=float(sample_rate))(stereo)
        lufs = float(integrated - 10 * np.log10(2))
        return lufs if np.isfinite(lufs) and integrated > -70 else None


def measure(analyser: Analyser, waveform: np.ndarray, sample_rate: int) -> Analysis:
    """``analyser.analyse``, with any failure returned instead of raised: the caller
    (indexing) keeps the track's embedding and records the error."""
    try:
        return Analysis(analyser.analyse(waveform, sample_rate))
    except Exception as exc:  # noqa: BLE001 (any analyser bug or odd input is one file's)
        return Analysis(None, f"{type(exc).__name__}: {exc}")


# -- shared steps ------------------------------------------------------------------------


def _checked(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    signal = np.asarray(waveform)
    if signal.ndim != 1:
        raise ValueError(f"descriptors need a mono waveform (1-d), got shape {signal.shape}; "
                         "decode with newwave.audio.decode, which averages the channels")
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    # Checked here for both analysers: Essentia's rhythm extractor never returns on NaN.
    broken = int(np.count_nonzero(~np.isfinite(signal)))
    if broken:
        raise ValueError(f"the audio has {broken} NaN or infinite samples (a corrupt "
                         "floating-point file); re-encode it from a good copy")
    return np.ascontiguousarray(signal, dtype=np.float32)


def _middle(signal: np.ndarray, sample_rate: int,
            seconds: float = EXCERPT_SECONDS) -> np.ndarray:
    """The middle ``seconds`` of the signal (all of a shorter one)."""
    length = int(seconds * sample_rate)
    if signal.size <= length:
        return signal
    start = (signal.size - length) // 2
    return signal[start:start + length]


def _resample(signal: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate:
        return signal
    import soxr

    return soxr.resample(signal, source_rate, target_rate).astype(np.float32)


def _unit(value: float) -> float:
    return float(min(1.0, max(0.0, value)))


def _pitch_class(name: str) -> int:
    """Pitch class of a tonic spelled C..B with an optional # or b (Essentia's output)."""
    base = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[name[0].upper()]
    shift = {"#": 1, "b": -1}.get(name[1:2], 0)
    return (base + shift) % 12


# -- the librosa analyser's steps --------------------------------------------------------------


def _tempo(signal: np.ndarray) -> tuple[float | None, float | None]:
    """(BPM, confidence) of a signal at ``ANALYSIS_RATE``; (None, None) without a pulse."""
    import librosa

    if signal.size < MIN_SECONDS * ANALYSIS_RATE:
        return None, None
    # A 1024-point FFT (46 ms) resolves onsets as well as librosa's 2048 at half the cost.
    envelope = librosa.onset.onset_strength(y=signal, sr=ANALYSIS_RATE, hop_length=ONSET_HOP,
                                            n_fft=1024)
    frames_per_second = ANALYSIS_RATE / ONSET_HOP
    longest = int(np.ceil(60 * frames_per_second / MIN_BPM)) + 1
    centred = envelope - envelope.mean()
    correlation = librosa.autocorrelate(centred, max_size=longest + 1)
    if correlation[0] <= 1e-12:  # a flat envelope (silence, a steady tone): no onsets
        return None, None
    correlation = correlation / correlation[0]
    lag = _best_lag(correlation, frames_per_second)
    if lag is None:
        return None, None
    before, peak, after = correlation[lag - 1:lag + 2]
    # Parabolic interpolation of the peak between whole-frame lags (|shift| <= 0.5).
    curvature = before - 2 * peak + after
    shift = 0.5 * (before - after) / curvature if curvature < 0 else 0.0
    confidence = _unit(peak)
    if confidence < MIN_PULSE:
        return None, None
    return float(60 * frames_per_second / (lag + shift)), confidence


def _best_lag(correlation: np.ndarray, frames_per_second: float) -> int | None:
    """The autocorrelation peak (a local maximum) in the BPM range that scores highest
    times the tempo prior; None when no lag correlates positively."""
    lags = np.arange(int(np.floor(60 * frames_per_second / MAX_BPM)),
                     int(np.ceil(60 * frames_per_second / MIN_BPM)) + 1)
    lags = lags[(lags >= 1) & (lags < correlation.size - 1)]
    values = correlation[lags]
    peaks = (values >= correlation[lags - 1]) & (values >= correlation[lags + 1]) & (values > 0)
    if not peaks.any():
        return None
    bpm = 60 * frames_per_second / lags
    prior = np.exp(-0.5 * (np.log2(bpm / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
    scores = np.where(peaks, values * prior, -np.inf)
    return int(lags[np.argmax(scores)])


def _key(signal: np.ndarray) -> tuple[str | None, Mode | None, float | None]:
    """(tonic, mode, confidence) of a signal at ``ANALYSIS_RATE``; Nones for silence."""
    import librosa

    if signal.size < MIN_SECONDS * ANALYSIS_RATE or not np.any(signal):
        return None, None, None
    # A recording's tuning (its offset from A440) is constant: estimated on 30 s, it costs
    # a quarter of an estimate over the whole excerpt.
    # Tuning in fractions of a CQT bin: chroma_cqt's 36 bins per octave.
    tuning = librosa.estimate_tuning(y=_middle(signal, ANALYSIS_RATE, TUNING_SECONDS),
                                     sr=ANALYSIS_RATE, bins_per_octave=CHROMA_BINS)
    chroma = librosa.feature.chroma_cqt(y=signal, sr=ANALYSIS_RATE, hop_length=CHROMA_HOP,
                                        tuning=tuning, bins_per_octave=CHROMA_BINS)
    profile = chroma.sum(axis=1)
    if not np.all(np.isfinite(profile)) or np.ptp(profile) <= 1e-9:
        return None, None, None
    best: tuple[float, int, Mode] = (-np.inf, 0, "major")
    for mode, template in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        for tonic in range(12):
            r = float(np.corrcoef(profile, np.roll(template, tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, mode)
    r, tonic, mode = best
    return PITCH_CLASSES[tonic], mode, _unit(r)


def _loudness(signal: np.ndarray, sample_rate: int) -> float | None:
    """BS.1770-4 integrated loudness (LUFS) of a mono signal; None for silence or a
    signal shorter than one 400 ms gating block."""
    import pyloudnorm

    if signal.size < 0.4 * sample_rate:
        return None
    lufs = pyloudnorm.Meter(sample_rate).integrated_loudness(signal.astype(np.float64))
    return float(lufs) if np.isfinite(lufs) else None

