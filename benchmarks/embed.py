"""Embedding speed: the offline audio model as a real-time factor (seconds of audio per
second) on a 3-minute track, the musical descriptors (tempo, key, loudness) of the same
waveform beside it with each installed analyser, and text encoder throughput on short
queries and on lyrics-length texts. Writes the "embed" section of docs/benchmarks.md.

Also measures the descriptor analysers' accuracy on synthesised audio of known tempo and
key (the "descriptors" section) and, with ``--spot-check DIR``, compares their tempo with
the BPM that album.json files under DIR declare (Warzone 2100's soundtrack format; Debian's
warzone2100-music, extracted outside the repository), in the "descriptors-spot-check"
section.

    python benchmarks/embed.py [--repeats 3] [--spot-check /tmp/wz/usr/share/games/warzone2100/music]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section  # noqa: E402

from newwave.audio import decode  # noqa: E402
from newwave.audio.descriptors import EXCERPT_SECONDS, Analyser, load_analyser  # noqa: E402
from newwave.audio.encode import write_audio  # noqa: E402
from newwave.demo.synth import PIECES, SAMPLE_RATE, render  # noqa: E402
from newwave.models.musicnn import MusicnnAudioModel  # noqa: E402
from newwave.models.musicnn.features import log_mel  # noqa: E402
from newwave.models.text import SentenceTransformerEncoder  # noqa: E402

TRACK_SECONDS = 180.0
LONG_TRACK_SECONDS = 600.0  # shows what the excerpt bounds
RATE = 16000  # musicnn's rate: indexing measures descriptors on the waveform it embeds
SR = 22050  # the synthesised accuracy set
TEMPI = [60, 72, 85, 90, 100, 110, 120, 128, 135, 143, 160, 174]
OCTAVES = (1, 2, 0.5, 3, 1 / 3)  # MIREX's Accuracy 2 forgives these tempo ratios


def analysers() -> list[Analyser]:
    """librosa, and Essentia when it is installed."""
    names = ["librosa"] + (["essentia"] if importlib.util.find_spec("essentia") else [])
    return [load_analyser(name) for name in names]  # type: ignore[arg-type]


def best_of(repeats: int, work) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spot-check", type=Path, default=None, help=(
        "a folder with album.json files that declare a bpm per track (Warzone 2100's "
        "soundtrack, Debian package warzone2100-music)"))
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        track = Path(tmp) / "track.opus"
        write_audio(track, render(PIECES[1], TRACK_SECONDS), SAMPLE_RATE)
        model = MusicnnAudioModel(backend="onnx")
        baseline = MusicnnAudioModel(backend="torch")
        decode_s = best_of(args.repeats, lambda: decode(track, model.sample_rate))
        waveform = decode(track, model.sample_rate)
        for m in (model, baseline):
            m.analyse(waveform[: 16000 * 6], 16000)  # warm-up
        logmel_s = best_of(args.repeats, lambda: log_mel(waveform))
        analyse_s = best_of(args.repeats, lambda: model.analyse(waveform, 16000))
        torch_s = best_of(args.repeats, lambda: baseline.analyse(waveform, 16000))
        long_track = Path(tmp) / "long.opus"
        write_audio(long_track, render(PIECES[1], LONG_TRACK_SECONDS), SAMPLE_RATE)
        long_waveform = decode(long_track, RATE)
    measured = analysers()
    descriptor_rows = descriptor_costs(measured, waveform, long_waveform, analyse_s,
                                       args.repeats)
    default_descriptors_s = descriptor_rows[0][1]
    total = decode_s + analyse_s + default_descriptors_s
    load = (f"Load average {load_before:.1f} at the start and {os.getloadavg()[0]:.1f} after "
            "the audio rows" + (": other processes shared the cores, which slows the "
                                "multi-threaded models most; compare rows of this run only"
                                if max(load_before, os.getloadavg()[0]) > 1.5 else "") + ".")
    encoder = SentenceTransformerEncoder()
    queries = [f"calm piano music for a rainy evening number {i}" for i in range(500)]
    lyric = " ".join(["we walked along the river while the city lights were burning"] * 22)
    lyrics = [f"{lyric} verse {i}" for i in range(24)]  # ~256 tokens each
    encoder.encode(queries[:10])
    short_s = best_of(args.repeats, lambda: encoder.encode(queries))
    long_s = best_of(args.repeats, lambda: encoder.encode(lyrics))
    single_s = statistics.median(best_of(1, lambda q=q: encoder.encode([q])) for q in queries[:50])
    rows = [
        ("decode 3-min opus to 16 kHz mono", decode_s, f"{TRACK_SECONDS / decode_s:.0f}x"),
        ("log-mel spectrogram", logmel_s, f"{TRACK_SECONDS / logmel_s:.0f}x"),
        ("musicnn MSD + MTT, PyTorch (baseline, incl. log-mel)", torch_s,
         f"{TRACK_SECONDS / torch_s:.0f}x"),
        ("musicnn MSD + MTT, ONNX Runtime (default, incl. log-mel)", analyse_s,
         f"{TRACK_SECONDS / analyse_s:.0f}x ({torch_s / analyse_s:.2f}x the baseline)"),
        *descriptor_rows,
        ("**whole track: decode + both models + descriptors (librosa)**", total,
         f"**{TRACK_SECONDS / total:.0f}x**"),
    ]
    table = "\n".join(f"| {name} | {sec:.2f} | {rtf} |" for name, sec, rtf in rows)
    write_section("embed", f"""
## Embedding (`benchmarks/embed.py`)

Machine: {machine()}; torch {torch.__version__} with {torch.get_num_threads()} threads.
Best of {args.repeats} runs. {load}

Audio, offline default (musicnn), one synthesized 3-minute track:

| step | seconds | real-time factor |
|---|---|---|
{table}

Target: a 3-minute track in under 3 s on 2 cores -> measured {total:.2f} s
({'met' if total < 3 else 'missed'}). Descriptors measure tempo and key on the middle
{EXCERPT_SECONDS:.0f} s and loudness on the whole track (`newwave.audio.descriptors`), so a
{LONG_TRACK_SECONDS / 60:.0f}-minute track costs little more than a 3-minute one.

Text, all-MiniLM-L6-v2 through sentence-transformers (torch, CPU):

| input | throughput |
|---|---|
| 500 short queries, batched | {len(queries) / short_s:,.0f} texts/s |
| one query at a time (search latency) | {single_s * 1000:.1f} ms per query |
| 24 lyrics of ~256 tokens | {len(lyrics) / long_s:.1f} texts/s |
""")
    write_section("descriptors", descriptor_accuracy(measured))
    if args.spot_check is not None:
        write_section("descriptors-spot-check", spot_check(measured, args.spot_check))
    print(f"3-min track: {total:.2f} s ({TRACK_SECONDS / total:.0f}x real time); "
          f"text: {len(queries) / short_s:.0f} short/s, {len(lyrics) / long_s:.1f} long/s, "
          f"{single_s * 1000:.1f} ms/query")


# -- descriptors ------------------------------------------------------------------------------


def descriptor_costs(measured: list[Analyser], waveform: np.ndarray, long_waveform: np.ndarray,
                     musicnn_s: float, repeats: int) -> list[tuple[str, float, str]]:
    """Rows of the cost table: each analyser on the 3-minute waveform (and the default one
    on the long track), with its cost as a share of musicnn's on the same waveform."""
    rows = []
    for analyser in measured:
        analyser.analyse(waveform[:RATE * 10], RATE)  # warm-up: imports, numba compilation
        seconds = best_of(repeats, lambda a=analyser: a.analyse(waveform, RATE))
        role = "default" if analyser.name == "librosa" else "optional, AGPL"
        rows.append((f"descriptors, {analyser.version} ({role})", seconds,
                     f"{TRACK_SECONDS / seconds:.0f}x ({seconds / musicnn_s:.2f}x musicnn)"))
    default = measured[0]
    seconds = best_of(repeats, lambda: default.analyse(long_waveform, RATE))
    rows.append((f"descriptors, {default.name}, a {LONG_TRACK_SECONDS / 60:.0f}-minute track",
                 seconds, f"{LONG_TRACK_SECONDS / seconds:.0f}x"))
    return rows


def _place(out: np.ndarray, sound: np.ndarray, seconds: float) -> None:
    start = int(round(seconds * SR))
    end = min(out.size, start + sound.size)
    if start < end:
        out[start:end] += sound[:end - start]


def drums(bpm: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Kick on 1 and 3, snare on 2 and 4, hi-hats on every beat and softer between."""
    t = np.arange(int(0.3 * SR)) / SR
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * np.exp(-t * 9)
    snare = np.diff(rng.standard_normal(int(0.2 * SR)), prepend=0.0) \
        * np.exp(-np.arange(int(0.2 * SR)) / SR * 18) * 0.6
    hat = np.diff(rng.standard_normal(int(0.05 * SR)), prepend=0.0) \
        * np.exp(-np.arange(int(0.05 * SR)) / SR * 80) * 0.3
    out, beat = np.zeros(int(seconds * SR)), 60 / bpm
    for i in range(int(seconds / beat) + 1):
        _place(out, kick if i % 2 == 0 else snare, i * beat)
        _place(out, hat, i * beat)
        _place(out, 0.6 * hat, i * beat + beat / 2)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def _tone(note: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    f = 440.0 * 2 ** ((note - 69) / 12)
    return sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 7)) * np.exp(-t * 1.2) \
        * np.minimum(1.0, t * 100)


def cadence(tonic: int, minor: bool, seconds: float) -> np.ndarray:
    """I-IV-V-I (major) or i-iv-V-i (harmonic minor) on ``tonic`` (MIDI), with a bass note
    per bar and the scale walked up and down in quarter notes above."""
    third = 3 if minor else 4
    chords = [(0, third, 7), (5, 5 + third, 12), (7, 11, 14), (0, third, 7)]
    scale = [0, 2, 3, 5, 7, 8, 11, 12] if minor else [0, 2, 4, 5, 7, 9, 11, 12]
    melody = scale + scale[::-1]
    out, beat = np.zeros(int(seconds * SR)), 0.6
    for bar in range(int(seconds / (4 * beat)) + 1):
        chord = chords[bar % 4]
        for note in (chord[0] - 12, *chord):
            _place(out, 0.3 * _tone(tonic + note, 4 * beat), bar * 4 * beat)
        for step in range(4):
            _place(out, 0.25 * _tone(tonic + 12 + melody[(bar * 4 + step) % 16], beat),
                   (bar * 4 + step) * beat)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def _timed(work: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    value = work()
    return value, time.perf_counter() - start


def descriptor_accuracy(measured: list[Analyser]) -> str:
    """Each analyser on 12 drum patterns of known tempo and 24 cadences (every key), 30 s
    each, and on the synthesised demo pieces (whose tempo and key are known by design)."""
    from newwave.audio.descriptors import PITCH_CLASSES

    rng = np.random.default_rng(0)
    tempo_set = [(bpm, drums(bpm, 30.0, rng)) for bpm in TEMPI]
    key_set = [((PITCH_CLASSES[(57 + k) % 12], minor), cadence(57 + k, minor, 30.0))
               for k in range(12) for minor in (False, True)]
    demo = [(piece, render(piece, 30.0)) for piece in PIECES]
    summary, demo_rows = [], {piece.title: [piece.title, f"{piece.bpm:g}"] for piece in PIECES}
    for analyser in measured:
        ratios, seconds = [], 0.0  # measured / true BPM (nan: no tempo found)
        for bpm, signal in tempo_set:
            found, took = _timed(lambda s=signal: analyser.analyse(s, SR))
            seconds += took
            ratios.append(found.bpm / bpm if found.bpm else float("nan"))
        keys = tonics = 0
        for (tonic, minor), signal in key_set:
            found, took = _timed(lambda s=signal: analyser.analyse(s, SR))
            seconds += took
            tonics += found.key == tonic
            keys += (found.key, found.mode) == (tonic, "minor" if minor else "major")
        within = sum(_agrees(r, 0.02, (1,)) for r in ratios)
        octave = sum(_agrees(r, 0.02, OCTAVES) for r in ratios)
        errors = [abs(r - 1) if r == r else float("inf") for r in ratios]
        summary.append(
            f"| {analyser.version} | {within}/{len(TEMPI)} | {octave}/{len(TEMPI)} | "
            f"{statistics.median(errors) * 100:.2f}% | {keys}/24 | {tonics}/24 | "
            f"{seconds / (len(tempo_set) + len(key_set)):.2f} s |")
        for piece, signal in demo:
            found = analyser.analyse(signal, SR)
            demo_rows[piece.title] += [f"{found.bpm:.1f}" if found.bpm else "-",
                                       f"{found.key} {found.mode}" if found.key else "-"]
    names = " | ".join(f"{a.name} BPM | {a.name} key" for a in measured)
    demo_table = "\n".join(f"| {' | '.join(row)} |" for row in demo_rows.values())
    return f"""
## Descriptor accuracy (`benchmarks/embed.py`)

Machine: {machine()}. Synthesised 30 s clips at 22.05 kHz: {len(TEMPI)} drum patterns at
{', '.join(map(str, TEMPI))} BPM (kick on 1 and 3, snare on 2 and 4, hi-hats on every beat
and softer between) and 24 cadences, one per key (I-IV-V-I or harmonic-minor i-iv-V-i on
harmonic tones, a bass note per bar, the scale in quarter notes above). "Within 2%" is the
tests' criterion; "also at x2, x1/2, x3, x1/3" forgives the octave errors every tempo
estimator makes on some music (MIREX's Accuracy 2, at 2%).

| analyser | tempo within 2% | also at x2, x1/2, x3, x1/3 | median tempo error | key and mode | tonic | seconds per clip |
|---|---|---|---|---|---|---|
{chr(10).join(summary)}

The demo library's synthesised pieces (`newwave.demo.synth`, 30 s), whose declared BPM is
the tempo they were written at. Rainy Window's arpeggio moves in eighth notes (132 per
minute at 66 BPM) over Am-F-C-G, which is also C major's vi-IV-I-V; Breakbeat Rush's
snare on 2 and 4 of a 174 BPM bar is the 87 BPM half-time feel drum and bass is known for.

| piece | declared BPM | {names} |
|---|---|{'---|---|' * len(measured)}
{demo_table}
"""


def _agrees(ratio: float, tolerance: float, allowed: tuple[float, ...]) -> bool:
    """Whether measured / true BPM is within ``tolerance`` of one of the ``allowed`` ratios
    (False when no tempo was found: the ratio is nan)."""
    return any(abs(ratio / r - 1) <= tolerance for r in allowed)


def _stereo_loudness(path: Path) -> float:
    """BS.1770 integrated loudness of a file's channels at its own rate (libsndfile reads
    opus), to compare with the mono 16 kHz value that indexing stores."""
    import pyloudnorm
    import soundfile

    samples, rate = soundfile.read(path, always_2d=True)
    return float(pyloudnorm.Meter(rate).integrated_loudness(samples))


def spot_check(measured: list[Analyser], root: Path) -> str:
    """Declared vs measured BPM (and both analysers' keys) of the tracks that album.json
    files under ``root`` list, each decoded at 16 kHz as indexing does."""
    rows, total, offsets = [], 0, []
    agree = dict.fromkeys([a.name for a in measured], 0)
    octave = dict.fromkeys([a.name for a in measured], 0)
    for album in sorted(root.rglob("album.json")):
        meta = json.loads(album.read_text(encoding="utf-8"))
        for entry in meta["tracks"]:
            if not entry.get("bpm"):
                continue
            declared, total = float(entry["bpm"]), total + 1
            waveform = decode(album.parent / entry["filename"], RATE)
            cells = [album.parent.name, entry["title"], f"{declared:g}"]
            for analyser in measured:
                found = analyser.analyse(waveform, RATE)
                ratio = found.bpm / declared if found.bpm else float("nan")
                agree[analyser.name] += _agrees(ratio, 0.04, (1,))
                octave[analyser.name] += _agrees(ratio, 0.04, OCTAVES)
                if analyser.name == "librosa" and found.loudness_lufs is not None:
                    offsets.append(_stereo_loudness(album.parent / entry["filename"])
                                   - found.loudness_lufs)
                confidence = f" ({found.bpm_confidence:.2f})" if found.bpm_confidence else ""
                cells += [f"{found.bpm:.1f}{confidence}" if found.bpm else "-",
                          f"x{ratio:.2f}", f"{found.key} {found.mode}" if found.key else "-"]
            rows.append(f"| {' | '.join(cells)} |")
            print(rows[-1], flush=True)
    names = " | ".join(f"{a.name} BPM (confidence) | ratio | {a.name} key" for a in measured)
    scores = "; ".join(f"{a.name}: {agree[a.name]}/{total} within 4% of the declared BPM, "
                       f"{octave[a.name]}/{total} also counting x2, x1/2, x3, x1/3"
                       for a in measured)
    return f"""
## Descriptor spot-check on real music (`benchmarks/embed.py --spot-check`)

Machine: {machine()}. Debian's `warzone2100-music` (Warzone 2100's soundtracks, opus,
GPL-2+/CC-BY-SA), whose album.json files declare a BPM per track; each track decoded to
16 kHz mono as indexing does, tempo and key on its middle {EXCERPT_SECONDS:.0f} s.
{scores} (MIREX's Accuracy 1 and 2). Many tracks declare 80, which several of them are
plainly not (their pulse is elsewhere in every analyser's view): the declared values are
the game's, not a ground truth.

Loudness: the file's own BS.1770 loudness (both channels at 48 kHz, pyloudnorm) minus the
stored value (the 16 kHz mono downmix): mean {statistics.mean(offsets):+.2f} LU, from
{min(offsets):+.2f} to {max(offsets):+.2f} (3.01 LU for identical channels; more for
wide stereo and bright content above 8 kHz).

| album | title | declared | {names} |
|---|---|---|{'---|---|---|' * len(measured)}
{chr(10).join(rows)}
"""


if __name__ == "__main__":
    main()
