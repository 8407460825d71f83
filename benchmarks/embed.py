"""Embedding speed: the offline audio model as a real-time factor (seconds of audio per
second) on a 3-minute track, and text encoder throughput on short queries and on
lyrics-length texts. Writes the "embed" section of docs/benchmarks.md.

    python benchmarks/embed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section  # noqa: E402

from newwave.audio import decode  # noqa: E402
from newwave.audio.encode import write_audio  # noqa: E402
from newwave.demo.synth import PIECES, SAMPLE_RATE, render  # noqa: E402
from newwave.models.musicnn import MusicnnAudioModel  # noqa: E402
from newwave.models.musicnn.features import log_mel  # noqa: E402
from newwave.models.text import SentenceTransformerEncoder  # noqa: E402

TRACK_SECONDS = 180.0


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
    args = parser.parse_args()
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
    total = decode_s + analyse_s
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
        ("**whole track: decode + both models**", total, f"**{TRACK_SECONDS / total:.0f}x**"),
    ]
    table = "\n".join(f"| {name} | {sec:.2f} | {rtf} |" for name, sec, rtf in rows)
    write_section("embed", f"""
## Embedding (`benchmarks/embed.py`)

Machine: {machine()}; torch {torch.__version__} with {torch.get_num_threads()} threads.
Best of {args.repeats} runs.

Audio, offline default (musicnn), one synthesized 3-minute track:

| step | seconds | real-time factor |
|---|---|---|
{table}

Target: a 3-minute track in under 3 s on 2 cores -> measured {total:.2f} s
({'met' if total < 3 else 'missed'}).

Text, all-MiniLM-L6-v2 through sentence-transformers (torch, CPU):

| input | throughput |
|---|---|
| 500 short queries, batched | {len(queries) / short_s:,.0f} texts/s |
| one query at a time (search latency) | {single_s * 1000:.1f} ms per query |
| 24 lyrics of ~256 tokens | {len(lyrics) / long_s:.1f} texts/s |
""")
    print(f"3-min track: {total:.2f} s ({TRACK_SECONDS / total:.0f}x real time); "
          f"text: {len(queries) / short_s:.0f} short/s, {len(lyrics) / long_s:.1f} long/s, "
          f"{single_s * 1000:.1f} ms/query")


if __name__ == "__main__":
    main()
