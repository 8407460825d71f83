"""Benchmark loaders: a generic JSONL manifest, Song Describer's CSV, MusicCaps' CSV.

Each gives an :class:`EvalDataset`: items (audio files, with optional lyrics) and
queries (a text and the set of relevant item ids). Audio that is missing under the
audio root is counted and reported; a query whose relevant audio is all missing is
dropped *and the count is reported with the results*, never silently.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from newwave.library.scanner import AUDIO_EXTENSIONS
from newwave.errors import InvalidInput


class DatasetError(InvalidInput, ValueError):
    """The benchmark file cannot be read as the format it claims."""


@dataclass(frozen=True)
class EvalItem:
    id: str
    audio: Path
    lyrics: str | None = None


@dataclass(frozen=True)
class EvalQuery:
    id: str
    text: str
    relevant: frozenset[str]


@dataclass
class EvalDataset:
    name: str
    source_sha256: str  # of the query file: results name exactly what they measured
    items: dict[str, EvalItem]
    queries: list[EvalQuery]
    missing_audio: int = 0  # referenced audio files not found under the audio root
    dropped_queries: int = 0  # queries left with no relevant audio
    notes: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _finish(name: str, source: Path, items: dict[str, EvalItem],
            wanted: list[tuple[str, str, set[str]]], missing: int) -> EvalDataset:
    """Keep queries with at least one present relevant item; count the rest."""
    queries, dropped = [], 0
    for query_id, text, relevant in wanted:
        present = frozenset(r for r in relevant if r in items)
        if present:
            queries.append(EvalQuery(query_id, text, present))
        else:
            dropped += 1
    dataset = EvalDataset(name, _sha256(source), items, queries, missing, dropped)
    if missing:
        dataset.notes.append(f"{missing} referenced audio files are missing under the audio "
                             "root")
    if dropped:
        dataset.notes.append(f"{dropped} queries dropped: none of their audio is present; "
                             f"metrics are over the remaining {len(queries)}")
    if not queries:
        raise DatasetError(f"{source}: no query has its audio under the audio root; check "
                           "--audio-root")
    return dataset


def load_manifest(path: Path, audio_root: Path) -> EvalDataset:
    """JSONL, one object per line: ``query`` and ``audio`` (or a list ``audios``), with
    optional ``lyrics`` (of that audio) and ``relevant`` (item ids; default: the line's
    audio). Lines with the same query text are one query with several relevant items."""
    items: dict[str, EvalItem] = {}
    grouped: dict[str, set[str]] = {}
    referenced: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text = str(row["query"]).strip()
            audios = row.get("audios") or ([row["audio"]] if "audio" in row else [])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}:{number}: expected a JSON object with 'query' and "
                               f"'audio' or 'audios' ({exc})") from exc
        for audio in audios:
            referenced.add(audio)
            if (audio_root / audio).is_file():
                items.setdefault(audio, EvalItem(audio, audio_root / audio, row.get("lyrics")))
        grouped.setdefault(text, set()).update(row.get("relevant") or audios)
    wanted = [(f"q{i}", text, relevant) for i, (text, relevant) in enumerate(grouped.items())]
    name = path.parent.name if path.stem == "manifest" else path.stem
    return _finish(name, path, items, wanted, len(referenced - set(items)))


def load_song_describer(path: Path, audio_root: Path, *, valid_only: bool = True) -> EvalDataset:
    """Song Describer (``caption_id, track_id, caption, is_valid_subset, ..., path``):
    each caption is a query whose relevant item is its track, found at
    ``audio_root / path`` (the dataset ships mp3s as ``NN/<track_id>.mp3``; a file with
    the same stem and another audio extension is accepted, e.g. after conversion)."""
    rows = _read_csv(path, {"caption_id", "track_id", "caption", "is_valid_subset", "path"})
    items: dict[str, EvalItem] = {}
    wanted, referenced = [], set()
    for row in rows:
        if valid_only and row["is_valid_subset"].strip().lower() != "true":
            continue
        track = row["track_id"].strip()
        referenced.add(track)
        if track not in items and (audio := _find_audio(audio_root / row["path"])) is not None:
            items[track] = EvalItem(track, audio)
        wanted.append((f"caption-{row['caption_id']}", row["caption"].strip(), {track}))
    name = "song-describer" + ("-valid" if valid_only else "")
    return _finish(name, path, items, wanted, len(referenced - set(items)))


def load_musiccaps(path: Path, audio_root: Path) -> EvalDataset:
    """MusicCaps (``ytid, start_s, end_s, ..., caption``): each caption is a query for
    its 10 s clip, looked up under the audio root as ``<ytid>_<start_s>*`` or
    ``<ytid>.*`` with any supported audio extension (the usual download layouts)."""
    rows = _read_csv(path, {"ytid", "start_s", "caption"})
    index = {p.stem: p for p in audio_root.rglob("*")
             if p.suffix.lower() in AUDIO_EXTENSIONS} if audio_root.is_dir() else {}
    items: dict[str, EvalItem] = {}
    wanted, referenced = [], set()
    for row in rows:
        clip = f"{row['ytid']}_{int(float(row['start_s']))}"
        referenced.add(clip)
        audio = index.get(clip) or index.get(row["ytid"]) or next(
            (p for stem, p in index.items() if stem.startswith(clip)), None)
        if audio is not None:
            items[clip] = EvalItem(clip, audio)
        wanted.append((clip, row["caption"].strip(), {clip}))
    return _finish("musiccaps", path, items, wanted, len(referenced - set(items)))


def _read_csv(path: Path, required: set[str]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = required - set(reader.fieldnames or [])
            if missing:
                raise DatasetError(f"{path}: missing columns {sorted(missing)}; is this the "
                                   "right file?")
            return list(reader)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from exc


def _find_audio(expected: Path) -> Path | None:
    if expected.is_file():
        return expected
    if expected.parent.is_dir():
        for candidate in sorted(expected.parent.glob(expected.stem + ".*")):
            if candidate.suffix.lower() in AUDIO_EXTENSIONS:
                return candidate
    return None
