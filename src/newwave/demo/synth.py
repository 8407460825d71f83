"""A small synthesized music library: distinct instruments, tempi and moods, written as
real tagged audio files in every supported format.

It is the demo's fallback where Debian's archive cannot be reached, and the tests'
library. The pieces are simple but acoustically honest (a decaying harmonic piano, a
four-on-the-floor kick, plucked strings), so audio models can tell them apart.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from newwave.audio.encode import write_audio
from newwave.demo.tagging import TagValues, write_tags

SAMPLE_RATE = 22050
Generator = Callable[[float, np.random.Generator], np.ndarray]


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE


def _midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _place(out: np.ndarray, sound: np.ndarray, start_s: float) -> None:
    start = int(start_s * SAMPLE_RATE)
    end = min(out.size, start + sound.size)
    if start < end:
        out[start:end] += sound[: end - start]


def _piano_note(note: float, length: float) -> np.ndarray:
    t = _t(length)
    f = _midi_hz(note)
    partials = sum(np.sin(2 * np.pi * f * k * t) * (0.6 ** k) * np.exp(-t * (1.5 + k))
                   for k in range(1, 8))
    return partials * np.minimum(1.0, t * 200)


def piano(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Slow solo piano: A-minor arpeggios at 66 bpm."""
    out = np.zeros(_t(seconds).size)
    chords = [[57, 60, 64, 69], [53, 57, 60, 65], [48, 52, 55, 60], [55, 59, 62, 67]]
    beat = 60 / 66
    for i in range(int(seconds / beat * 2)):
        chord = chords[(i // 8) % len(chords)]
        _place(out, _piano_note(chord[i % 4] + 12 * (i % 8 >= 4), 2.5), i * beat / 2)
    return out


def _kick() -> np.ndarray:
    t = _t(0.35)
    return np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * np.exp(-t * 9)


def _noise_hit(rng: np.random.Generator, length: float, decay: float) -> np.ndarray:
    t = _t(length)
    noise = rng.standard_normal(t.size)
    return np.diff(noise, prepend=0.0) * np.exp(-t * decay) * 0.3  # high-passed noise


def techno(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Four-on-the-floor kick, off-beat hats and a saw bass at 128 bpm."""
    out = np.zeros(_t(seconds).size)
    beat = 60 / 128
    kick, hat = _kick(), _noise_hit(rng, 0.08, 60)
    bass_t = _t(beat / 2)
    for i in range(int(seconds / beat) + 1):
        _place(out, kick, i * beat)
        _place(out, hat, i * beat + beat / 2)
        f = _midi_hz([33, 33, 36, 31][(i // 4) % 4])
        saw = 2 * ((bass_t * f) % 1.0) - 1
        _place(out, 0.25 * saw * np.exp(-bass_t * 8), i * beat + beat / 2)
    return out


def _pluck(note: float, length: float, rng: np.random.Generator) -> np.ndarray:
    """Karplus-Strong plucked string."""
    period = int(SAMPLE_RATE / _midi_hz(note))
    buffer = rng.uniform(-1, 1, period)
    blocks = []
    for _ in range(int(length * SAMPLE_RATE) // period + 1):  # one period per step
        blocks.append(buffer)
        buffer = 0.498 * (buffer + np.roll(buffer, -1))
    return np.concatenate(blocks)[: int(length * SAMPLE_RATE)]


def guitar(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Bright strummed acoustic guitar in G major at 100 bpm."""
    out = np.zeros(_t(seconds).size)
    chords = [[43, 47, 50, 55, 59, 67], [48, 52, 55, 60, 64], [50, 54, 57, 62, 66],
              [43, 47, 50, 55, 59, 67]]
    beat = 60 / 100
    for i in range(int(seconds / beat) + 1):
        for j, note in enumerate(chords[(i // 4) % 4]):
            _place(out, 0.4 * _pluck(note, 1.2, rng), i * beat + j * 0.012)
    return out


def ambient(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Slow evolving pad: detuned sines with a breathing swell, no percussion."""
    t = _t(seconds)
    out = np.zeros(t.size)
    for note in (45, 52, 57, 60, 64):
        for detune in (-0.08, 0.0, 0.08):
            out += np.sin(2 * np.pi * _midi_hz(note + detune) * t + rng.uniform(0, 6))
    return out * (0.6 + 0.4 * np.sin(2 * np.pi * t / 8)) / 15


def strings(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Bowed string ensemble: vibrato sawtooth chords, low-passed, slow attack."""
    t = _t(seconds)
    out = np.zeros(t.size)
    for note in (50, 57, 62, 65):
        f = _midi_hz(note) * (1 + 0.004 * np.sin(2 * np.pi * 5.5 * t + rng.uniform(0, 6)))
        phase = np.cumsum(f) / SAMPLE_RATE
        out += 2 * (phase % 1.0) - 1
    kernel = np.ones(12) / 12  # a gentle low-pass
    return np.convolve(out, kernel, mode="same") * np.minimum(1, t / 1.5) / 6


def drum_and_bass(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Fast breakbeat at 174 bpm: kick, snare on two and four, busy hats, sub bass."""
    out = np.zeros(_t(seconds).size)
    beat = 60 / 174
    kick, snare, hat = _kick(), _noise_hit(rng, 0.2, 18) * 2, _noise_hit(rng, 0.05, 80)
    for bar in range(int(seconds / (4 * beat)) + 1):
        base = bar * 4 * beat
        for pos in (0, 2.5):
            _place(out, kick, base + pos * beat)
        for pos in (1, 3):
            _place(out, snare, base + pos * beat)
        for k in range(8):
            _place(out, hat, base + k * beat / 2)
        sub = _t(4 * beat)
        _place(out, 0.3 * np.sin(2 * np.pi * _midi_hz(29) * sub), base)
    return out


@dataclass(frozen=True)
class Piece:
    title: str
    artist: str
    album: str
    genre: str
    bpm: float
    description: str
    generate: Generator
    lyrics: str | None = None


PIECES: list[Piece] = [
    Piece("Rainy Window", "Mira Vale", "Quiet Rooms", "Classical", 66,
          "melancholic solo piano for a rainy evening", piano,
          "Rain on the window, the house is asleep\nI count the letters you told me to keep\n"
          "Leaving the lamp on in case you return\nSome kinds of silence take a lifetime to learn"),
    Piece("Warehouse Pulse", "Unit 7", "Night Shift", "Techno", 128,
          "driving four-on-the-floor techno for the dancefloor", techno),
    Piece("Open Road", "The Linden Trail", "Miles", "Folk", 100,
          "upbeat acoustic guitar, sunny road trip", guitar,
          "Packed up my bag and I closed the old door\nLeaving the town where I grew up before\n"
          "Mother is waving, the highway is wide\nHome is a song that I carry inside"),
    Piece("Drift", "Mira Vale", "Quiet Rooms", "Ambient", 60,
          "calm ambient pad for studying and sleep", ambient),
    Piece("Midnight Strings", "Aurora Ensemble", "Nocturnes", "Classical", 70,
          "sad cinematic string ensemble", strings,
          "Under the bridge where the lovers would meet\nA violin cries for the love it lost\n"
          "Cold is the night and the heart pays the cost"),
    Piece("Breakbeat Rush", "Unit 7", "Night Shift", "Drum and Bass", 174,
          "energetic fast drum and bass breakbeat", drum_and_bass),
]

# One format per piece, covering everything the scanner reads.
FORMATS = [".flac", ".mp3", ".ogg", ".m4a", ".opus", ".wav"]


def cover_png(seed: int, size: int = 64) -> bytes:
    """A small gradient image, distinct per seed."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 255, 3), rng.integers(0, 255, 3)
    ramp = np.linspace(0, 1, size)[:, None, None]
    pixels = (a * (1 - ramp) + b * ramp).astype(np.uint8).repeat(size, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def render(piece: Piece, seconds: float, seed: int = 0) -> np.ndarray:
    """The piece as mono float32 at ``SAMPLE_RATE``, peak-normalised to -3 dBFS."""
    audio = piece.generate(seconds, np.random.default_rng(seed))
    return (0.7 * audio / max(float(np.abs(audio).max()), 1e-9)).astype(np.float32)


def build_synthetic_library(folder: Path, *, seconds: float = 30.0,
                            on_file: Callable[[Path], None] | None = None) -> list[Path]:
    """Write every piece into ``folder/<Artist>/<Album>/`` as a tagged file; return the paths.

    Lyrics live in the tags of most pieces; the string piece keeps them in an ``.lrc``
    sidecar, and one album uses a folder ``cover.png`` instead of embedded art.
    """
    written = []
    for index, piece in enumerate(PIECES):
        ext = FORMATS[index % len(FORMATS)]
        album_dir = folder / piece.artist / piece.album
        album_dir.mkdir(parents=True, exist_ok=True)
        path = album_dir / f"{index + 1:02d} {piece.title}{ext}"
        write_audio(path, render(piece, seconds, seed=index), SAMPLE_RATE)
        sidecar_lyrics = piece.title == "Midnight Strings"
        folder_art = piece.album == "Night Shift"
        write_tags(path, TagValues(
            title=piece.title, artist=piece.artist, album=piece.album, genre=piece.genre,
            track_number=index + 1, year=2024, bpm=piece.bpm, comment=piece.description,
            lyrics=None if sidecar_lyrics else piece.lyrics,
            cover_png=None if folder_art else cover_png(index)))
        if sidecar_lyrics and piece.lyrics:
            lrc = "\n".join(f"[00:{4 * i:02d}.00]{line}"
                            for i, line in enumerate(piece.lyrics.splitlines()))
            path.with_suffix(".lrc").write_text(f"[ar:{piece.artist}]\n{lrc}\n", encoding="utf-8")
        if folder_art:
            (album_dir / "cover.png").write_bytes(cover_png(100 + index, size=128))
        written.append(path)
        if on_file is not None:
            on_file(path)
    return written
