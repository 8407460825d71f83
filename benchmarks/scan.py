"""Scan throughput on a generated library: first scan with and without full decoding,
and a no-change rescan. Writes the "scan" section of docs/benchmarks.md.

    python benchmarks/scan.py [--files 1000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section  # noqa: E402

from newwave.audio.encode import write_audio  # noqa: E402
from newwave.catalog import Catalog  # noqa: E402
from newwave.demo.synth import FORMATS, PIECES, SAMPLE_RATE, render  # noqa: E402
from newwave.demo.tagging import TagValues, write_tags  # noqa: E402
from newwave.library import Scanner  # noqa: E402


def generate(folder: Path, files: int, seconds: float) -> float:
    """Encode one clip per (piece, format) and copy it under distinct tags, so every file
    has its own content hash. Returns the total audio duration."""
    clips = {}
    for i, piece in enumerate(PIECES):
        for ext in FORMATS:
            clip = folder / "_clips" / f"{i}{ext}"
            clip.parent.mkdir(parents=True, exist_ok=True)
            write_audio(clip, render(piece, seconds, seed=i), SAMPLE_RATE)
            clips[(i, ext)] = clip
    keys = list(clips)
    for n in range(files):
        piece_index, ext = keys[n % len(keys)]
        target = folder / f"artist{n % 37:02d}" / f"album{n % 11:02d}" / f"{n:05d}{ext}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clips[(piece_index, ext)], target)
        write_tags(target, TagValues(title=f"Song {n}", artist=f"Artist {n % 37}",
                                     album=f"Album {n % 11}", track_number=n % 20 + 1))
    shutil.rmtree(folder / "_clips")
    return files * seconds


def timed_scan(catalog_path: Path, library: Path, verify: bool) -> tuple[float, int]:
    with Catalog(catalog_path) as catalog:
        start = time.perf_counter()
        report = Scanner(catalog, verify=verify).scan(library)
        elapsed = time.perf_counter() - start
    assert report.failed == 0, f"{report.failed} files failed"
    return elapsed, report.total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="newwave-bench-") as tmp:
        work = Path(tmp)
        print(f"generating {args.files} files of {args.seconds:.0f} s ...", flush=True)
        audio_seconds = generate(work / "library", args.files, args.seconds)
        size_mb = sum(p.stat().st_size for p in (work / "library").rglob("*.*")) / 1e6
        rows = []
        for label, catalog, verify in [("first scan (probe + tags + hash)", "a.sqlite", False),
                                       ("no-change rescan", "a.sqlite", False),
                                       ("first scan with full decode (--verify)", "b.sqlite", True)]:
            elapsed, total = timed_scan(work / catalog, work / "library", verify)
            rows.append((label, elapsed, total / elapsed))
            print(f"{label}: {elapsed:.2f} s, {total / elapsed:.0f} files/s", flush=True)
    base = rows[0][1]
    table = "\n".join(f"| {label} | {elapsed:.2f} | {rate:,.0f} | {elapsed / base:.2f} |"
                      for label, elapsed, rate in rows)
    write_section("scan", f"""
## Library scan (`benchmarks/scan.py`)

Machine: {machine()}.
Library: {args.files} generated files ({', '.join(FORMATS)}), {args.seconds:.0f} s each
({audio_seconds / 3600:.1f} h of audio, {size_mb:.0f} MB), tagged with mutagen.

| pass | seconds | files/s | time vs first scan |
|---|---|---|---|
{table}

The no-change rescan only stats files and compares them with the catalog. Full decoding
(`newwave index --verify`) catches corrupt audio that a header probe accepts, at the cost
shown in the last row.
""")


if __name__ == "__main__":
    main()
