"""Measure the built-in prior of musicnn's tag calibration (models/musicnn/tag_prior.json).

    python scripts/tag_prior.py FOLDER [FOLDER ...] --source "what the folders are"

Every audio file under the folders is decoded (its first ``--seconds``), run through
musicnn, and each tag's log-probability mean and spread over the files are written out.
The shipped prior was measured on the free-licensed music of Debian's archive
(warzone2100-music, wesnoth-1.16-music, singularity-music, extremetuxracer-data,
lincity-ng-data, hyperrogue-music, asc-music): real music, none of it in the eval sets.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from newwave.audio.decode import AudioDecodeError, decode
from newwave.library.scanner import AUDIO_EXTENSIONS
from newwave.models.musicnn.model import TAGS, MusicnnAudioModel
from newwave.models.tagspace import PRIOR_FILE, TagPrior


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--source", required=True, help="What the folders hold (recorded).")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--exclude", action="append", default=[],
                        help="Skip paths containing this (e.g. sound effects).")
    args = parser.parse_args()
    files = sorted(p for folder in args.folders for p in folder.rglob("*")
                   if p.suffix.lower() in AUDIO_EXTENSIONS
                   and not any(part in str(p) for part in args.exclude))
    model = MusicnnAudioModel()
    tags = []
    for number, path in enumerate(files, start=1):
        try:
            waveform = decode(path, model.sample_rate, max_seconds=args.seconds)
        except AudioDecodeError as error:  # a broken file in a package: left out, said
            print(f"{number}/{len(files)} skipped: {error}", flush=True)
            continue
        tags.append(model.analyse(waveform, model.sample_rate).tags)
        print(f"{number}/{len(files)} {path.name}", flush=True)
    prior = TagPrior.measure(np.stack(tags))
    PRIOR_FILE.write_text(json.dumps({
        "source": args.source, "files": len(tags), "seconds_per_file": args.seconds,
        "tags": TAGS, "mean": [round(float(x), 5) for x in prior.mean],
        "std": [round(float(x), 5) for x in prior.std]}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {PRIOR_FILE}")


if __name__ == "__main__":
    main()
