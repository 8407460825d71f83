"""The CLI's search, similar, models, eval and train commands through the real console
entry point (``python -m newwave.cli``) on an indexed generated library, comparing exact
values: which tracks each flag lets through, in which order, and the printed numbers.

Every command loads its models, so the module runs all invocations once, two at a time,
and the tests read the results.

The library (newwave.demo.synth): 6 tracks of 4 s, all from 2024.
  Rainy Window (Mira Vale, Quiet Rooms, Classical, lyrics)
  Warehouse Pulse (Unit 7, Night Shift, Techno)
  Open Road (The Linden Trail, Miles, Folk, lyrics)
  Drift (Mira Vale, Quiet Rooms, Ambient)
  Midnight Strings (Aurora Ensemble, Nocturnes, Classical, lyrics)
  Breakbeat Rush (Unit 7, Night Shift, Drum and Bass)
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from newwave.demo.synth import PIECES

ALL = {p.title for p in PIECES}
LYRICS = {p.title for p in PIECES if p.lyrics}
EVERYTHING = ["search", "music", "--mode", "audio", "--limit", "100"]  # matches every track

# About 20 commands, each loading its models: the module fixture takes a few minutes.
pytestmark = pytest.mark.timeout(900)


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "newwave.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600)


def rows(out: str) -> list[list[str]]:
    """The hit rows of a printed result table: [rank, id, title, artist, album, score, why]."""
    found = []
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃").split("│")]
        if len(cells) >= 6 and cells[0].isdigit():
            found.append(cells)
    return found


def titles(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return [r[2] for r in rows(result.stdout)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, synthetic_library_template: Path):
    import shutil

    from newwave.audio import decode
    from newwave.audio.encode import write_audio

    base = tmp_path_factory.mktemp("cli")
    library = base / "library"
    shutil.copytree(synthetic_library_template, library)
    env = {**os.environ, "NEWWAVE_DATA_DIR": str(base / "data"),
           "NEWWAVE_CACHE_DIR": str(base / "cache"), "COLUMNS": "250"}
    before = cli(env, "models")
    indexed = cli(env, "index", str(library))
    assert indexed.returncode == 0, indexed.stdout + indexed.stderr

    snippet = base / "snippet.wav"
    write_audio(snippet, decode(next(library.rglob("*Warehouse Pulse.mp3")), 16000,
                                offset_seconds=0.5, max_seconds=3.0), 16000)
    manifest = base / "bench.jsonl"
    manifest.write_text("\n".join(json.dumps({
        "query": p.description,
        "audio": str(next(q for q in library.rglob(f"* {p.title}.*")
                          if q.suffix != ".lrc").relative_to(library))}) for p in PIECES))
    left, right = base / "left.csv", base / "right.csv"
    for path, entries in ((left, [("1", "Rainy Window", "Mira Vale"),
                                  ("2", "Open Road", "The Linden Trail")]),
                          (right, [("a", "Rainy Window (Remastered)", "Mira Vale"),
                                   ("b", "Something Else", "Nobody")])):
        with open(path, "w", newline="") as handle:
            csv.writer(handle).writerows([("id", "title", "artist"), *entries])

    commands = {
        "everything": EVERYTHING,
        "album": [*EVERYTHING, "--album", "night"],
        "artist+lyrics": [*EVERYTHING, "--artist", "MIRA", "--has-lyrics"],
        "artist+no-lyrics": [*EVERYTHING, "--artist", "unit", "--no-lyrics"],
        "genre": [*EVERYTHING, "--genre", "classical"],
        "years+durations": [*EVERYTHING, "--year-min", "2024", "--year-max", "2024",
                            "--min-duration", "3", "--max-duration", "5"],
        "year-min": [*EVERYTHING, "--year-min", "2025"],
        "year-max": [*EVERYTHING, "--year-max", "2023"],
        "min-duration": [*EVERYTHING, "--min-duration", "5"],
        "max-duration": [*EVERYTHING, "--max-duration", "3"],
        "page": ["search", "music", "--mode", "audio", "--limit", "2", "--offset", "2"],
        "lyrics": ["search", "leaving my hometown behind", "--mode", "lyrics", "--limit", "10"],
        "combined": ["search", "driving techno for the club", "--limit", "3"],
        "recording": ["search", "--audio", str(snippet), "--limit", "1"],
        "neither": ["search"],
        "similar": ["similar", "Warehouse Pulse", "--limit", "5"],
        "similar-filtered": ["similar", "warehouse", "--artist", "mira vale"],
        "similar-unknown": ["similar", "no such title"],
        "models": ["models"],
        "eval": ["eval", "--manifest", str(manifest), "--audio-root", str(library),
                 "--mode", "audio", "--out", str(base / "eval")],
        "train-help": ["train", "fusion", "--help"],
        "align": ["train", "align", str(left), str(right), "--out", str(base / "m.csv"),
                  "--threshold", "80"],
    }
    with ThreadPoolExecutor(2) as pool:  # each command loads its models: two at a time
        futures = {name: pool.submit(cli, env, *args) for name, args in commands.items()}
        results = {name: future.result() for name, future in futures.items()}
    return {**results, "models-empty": before, "index": indexed, "base": base}


def test_search_modes(runs) -> None:
    # Lyrics mode ranks only the 3 tracks with lyrics; the hometown one first.
    lyrics = titles(runs["lyrics"])
    assert lyrics[0] == "Open Road" and sorted(lyrics) == sorted(LYRICS)
    combined = runs["combined"]
    assert titles(combined)[0] == "Warehouse Pulse" and len(rows(combined.stdout)) == 3
    assert "reciprocal-rank fusion" in combined.stdout
    assert [r[0] for r in rows(combined.stdout)] == ["1", "2", "3"]
    assert titles(runs["recording"]) == ["Warehouse Pulse"]
    assert "recording of 3.0 s" in runs["recording"].stdout
    neither = runs["neither"]
    assert neither.returncode == 1 and "give a text query or --audio FILE" in neither.stderr


def test_every_filter_flag_reaches_the_search(runs) -> None:
    assert sorted(titles(runs["everything"])) == sorted(ALL)
    assert sorted(titles(runs["album"])) == ["Breakbeat Rush", "Warehouse Pulse"]  # Night Shift
    assert titles(runs["artist+lyrics"]) == ["Rainy Window"]  # Mira Vale's track with lyrics
    assert sorted(titles(runs["artist+no-lyrics"])) == ["Breakbeat Rush", "Warehouse Pulse"]
    assert sorted(titles(runs["genre"])) == ["Midnight Strings", "Rainy Window"]
    assert sorted(titles(runs["years+durations"])) == sorted(ALL)  # bounds are inclusive
    for name in ("year-min", "year-max", "min-duration", "max-duration"):
        assert titles(runs[name]) == [], name  # each bound alone excludes all 6
        assert "No matching tracks." in runs[name].stdout


def test_paging_shows_ranks_three_and_four(runs) -> None:
    page, everything = rows(runs["page"].stdout), rows(runs["everything"].stdout)
    assert [r[0] for r in page] == ["3", "4"]
    assert [r[2] for r in page] == [r[2] for r in everything[2:4]]


def test_similar(runs) -> None:
    similar = titles(runs["similar"])
    assert similar[0] == "Breakbeat Rush" and len(similar) == 5
    assert "Warehouse Pulse" not in similar
    assert sorted(titles(runs["similar-filtered"])) == ["Drift", "Rainy Window"]
    unknown = runs["similar-unknown"]
    assert unknown.returncode == 1 and "no track title contains 'no such title'" in unknown.stderr


def test_models_lists_the_stored_vectors(runs) -> None:
    assert "No vectors stored yet" in runs["models-empty"].stdout
    out = runs["models"].stdout
    assert "text encoder: all-MiniLM-L6-v2" in out and "audio model:  musicnn" in out
    table = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃").split("│")]
        if len(cells) == 5 and cells[0] in ("audio-text", "audio", "lyrics"):
            table[cells[0]] = (cells[3], cells[4])
    # dims: musicnn's 50... tags space is 100-d, its embedding 400-d, MiniLM 384-d;
    # 6 tracks have sound vectors, the 3 with lyrics have lyrics vectors.
    assert table == {"audio-text": ("100", "6"), "audio": ("400", "6"), "lyrics": ("384", "3")}


def test_eval_on_a_generated_manifest(runs) -> None:
    result = runs["eval"]
    assert result.returncode == 0, result.stdout + result.stderr
    saved = json.loads((runs["base"] / "eval" / "results.json").read_text())
    assert saved["dataset"]["queries"] == 6 and saved["dataset"]["missing_audio"] == 0
    assert [r["name"] for r in saved["results"]] == [
        "audio · musicnn + all-MiniLM-L6-v2", "random (baseline)", "bm25 (baseline)"]
    printed = {cells[0]: cells[1:] for cells in
               ([c.strip() for c in line.strip().strip("│┃").split("│")]
                for line in result.stdout.splitlines()) if len(cells) == 8}
    for r in saved["results"]:
        m, ranks = r["metrics"], list(r["ranks"].values())
        assert len(ranks) == 6
        # The printed MRR and median rank are the saved ones; the median is that of the
        # saved ranks, and MRR their mean reciprocal.
        assert printed[r["name"]][0] == f"{m['MRR']['mean']:.3f}"
        assert m["MRR"]["mean"] == pytest.approx(sum(1 / k for k in ranks) / 6)
        assert printed[r["name"]][6] == f"{statistics.median(ranks):.1f}"
    assert (runs["base"] / "eval" / "results.png").read_bytes().startswith(b"\x89PNG")


def test_train_help_and_a_tiny_alignment(runs) -> None:
    help_ = runs["train-help"]
    assert help_.returncode == 0 and "--config" in help_.stdout and "--epochs" in help_.stdout
    align = runs["align"]
    assert align.returncode == 0, align.stdout + align.stderr
    with open(runs["base"] / "m.csv", newline="") as handle:
        matched = list(csv.DictReader(handle))
    # Only Rainy Window has a counterpart (same artist, title plus "(Remastered)").
    assert [(m["left_id"], m["right_id"]) for m in matched] == [("1", "a")]
