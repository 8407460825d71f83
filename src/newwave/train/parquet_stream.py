"""Streaming a large parquet corpus shard by shard, with bounded memory.

Only one shard is open at a time and rows come out in record batches; a shuffle buffer
of ``buffer_size`` rows gives a deterministic (seeded) shuffle without loading a
shard; the position (shard, rows read) can be saved and restored, so training
resumes mid-corpus (rows that sat in the shuffle buffer at save time count as read: a
resume skips at most ``buffer_size`` rows, never repeats one); a local shard can be deleted once consumed (for corpora larger
than the disk, fetched shard by shard). Sources are local paths, folders of
``*.parquet`` files, or fsspec URLs (``s3://...``, ``hf://...``) when fsspec is installed.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from newwave.audio import decode
from newwave.train.common import TrainingDataError


@dataclass
class StreamPosition:
    shard: int = 0  # index into the shard list
    rows: int = 0  # rows of that shard already handed out (before shuffling)


def list_shards(sources: list[str | Path]) -> list[str]:
    shards: list[str] = []
    for source in sources:
        text = str(source)
        if "://" in text:
            shards.append(text)
        elif Path(text).is_dir():
            shards += sorted(str(p) for p in Path(text).glob("*.parquet"))
        elif Path(text).is_file():
            shards.append(text)
        else:
            raise TrainingDataError(f"{text}: no such parquet file or folder")
    if not shards:
        raise TrainingDataError(f"no parquet shards in {[str(s) for s in sources]}")
    return shards


class ParquetStream:
    def __init__(self, sources: list[str | Path], *, columns: list[str] | None = None,
                 batch_rows: int = 1024, buffer_size: int = 0, seed: int = 0,
                 delete_consumed: bool = False,
                 on_shard: Callable[[str, bool], None] | None = None) -> None:
        self.shards = list_shards(sources)
        self.columns = columns
        self.batch_rows = batch_rows
        self.buffer_size = buffer_size
        self.seed = seed
        self.delete_consumed = delete_consumed
        self.on_shard = on_shard  # called with (shard, opened) / (shard, closed)
        self.position = StreamPosition()

    def state_dict(self) -> dict[str, int]:
        return {"shard": self.position.shard, "rows": self.position.rows}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.position = StreamPosition(int(state["shard"]), int(state["rows"]))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rng = np.random.default_rng([self.seed, self.position.shard, self.position.rows])
        buffer: list[dict[str, Any]] = []
        for row in self._rows():
            if self.buffer_size <= 1:
                yield row
                continue
            buffer.append(row)
            if len(buffer) >= self.buffer_size:
                yield buffer.pop(int(rng.integers(len(buffer))))
        rng.shuffle(buffer)  # type: ignore[arg-type]
        yield from buffer

    def _rows(self) -> Iterator[dict[str, Any]]:
        while self.position.shard < len(self.shards):
            shard = self.shards[self.position.shard]
            skip = self.position.rows
            handle = self._open(shard)
            if self.on_shard:
                self.on_shard(shard, True)
            try:
                for batch in handle.iter_batches(batch_size=self.batch_rows, columns=self.columns):
                    rows = batch.to_pylist()
                    if skip >= len(rows):
                        skip -= len(rows)
                        continue
                    for row in rows[skip:]:
                        self.position.rows += 1
                        yield row
                    skip = 0
            finally:
                handle.close()
                if self.on_shard:
                    self.on_shard(shard, False)
            if self.delete_consumed and "://" not in shard:
                Path(shard).unlink(missing_ok=True)
            self.position = StreamPosition(self.position.shard + 1, 0)

    @staticmethod
    def _open(shard: str) -> pq.ParquetFile:
        try:
            if "://" in shard:
                import fsspec  # optional: only for remote corpora

                return pq.ParquetFile(fsspec.open(shard, "rb").open())
            return pq.ParquetFile(shard)
        except (OSError, ImportError) as exc:
            raise TrainingDataError(f"{shard}: cannot open parquet shard ({exc}); for URLs "
                                    "install fsspec and its protocol package") from exc


def row_audio(row: dict[str, Any], sample_rate: int, *, column: str = "audio",
              root: Path | None = None, max_seconds: float | None = None) -> np.ndarray:
    """The waveform of a row: embedded bytes (a bytes value, or a dict with ``bytes``, as
    Hugging Face datasets store audio) or a referenced file (a path, or a dict with
    ``path``), resolved against ``root``."""
    value = row.get(column)
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return decode(io.BytesIO(value), sample_rate, max_seconds=max_seconds)
    if isinstance(value, str):
        return decode(Path(root or ".") / value, sample_rate, max_seconds=max_seconds)
    raise TrainingDataError(f"row has no audio in column {column!r} (bytes or path expected)")
