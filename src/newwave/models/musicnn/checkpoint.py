"""Reading TensorFlow 1 checkpoints (tensor bundles) without TensorFlow.

A bundle is two files: ``<prefix>.index``, a LevelDB-style SSTable whose keys are
tensor names and whose values are ``BundleEntryProto`` messages (dtype, shape, shard,
offset, size, crc32c), and ``<prefix>.data-00000-of-00001`` with the raw little-endian
tensor bytes. Every block of the index and every tensor is checked against its CRC32C.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import crc32c as _crc32c
import numpy as np
from newwave.errors import Unavailable

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5  # compression type (1 byte) + masked crc32c (4 bytes)
_CRC_MASK_DELTA = 0xA282EAD8
# tensorflow/core/framework/types.proto
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8,
           9: np.int64, 10: np.bool_, 19: np.float16}


class CheckpointError(Unavailable):
    """The checkpoint is missing, damaged or uses a feature this reader does not know."""


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: type
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int


def masked_crc32c(data: bytes) -> int:
    """LevelDB/TensorFlow's masked CRC32C (so CRCs of CRCs stay well distributed)."""
    crc = _crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xFFFFFFFF


class Checkpoint:
    """The tensors of a TF1 checkpoint ``prefix`` (e.g. ``.../MSD_musicnn/`` + ``""``)."""

    def __init__(self, prefix: Path | str) -> None:
        self.prefix = str(prefix)
        index_path = Path(self.prefix + ".index")
        try:
            index = index_path.read_bytes()
        except OSError as exc:
            raise CheckpointError(f"{index_path}: cannot read checkpoint index ({exc.strerror}); "
                                  "reinstall the model package") from exc
        self.num_shards, entries = _read_index(index, index_path)
        self.entries = {e.name: e for e in entries}

    def names(self) -> list[str]:
        return sorted(self.entries)

    def read(self, name: str) -> np.ndarray:
        if name not in self.entries:
            raise CheckpointError(f"{self.prefix}: no tensor named {name!r}")
        entry = self.entries[name]
        data_path = Path(f"{self.prefix}.data-{entry.shard:05d}-of-{self.num_shards:05d}")
        with open(data_path, "rb") as handle:
            handle.seek(entry.offset)
            raw = handle.read(entry.size)
        if len(raw) != entry.size or masked_crc32c(raw) != entry.crc32c:
            raise CheckpointError(f"{data_path}: tensor {name!r} fails its CRC32C check; the "
                                  "checkpoint is damaged, reinstall the model package")
        return np.frombuffer(raw, dtype=np.dtype(entry.dtype).newbyteorder("<")) \
            .reshape(entry.shape).copy()

    def read_all(self) -> dict[str, np.ndarray]:
        return {name: self.read(name) for name in self.names()}


def _read_index(data: bytes, path: Path) -> tuple[int, list[TensorEntry]]:
    """(number of data shards, tensor entries) of a bundle index."""
    if len(data) < _FOOTER_SIZE or struct.unpack("<Q", data[-8:])[0] != _TABLE_MAGIC:
        raise CheckpointError(f"{path}: not a TensorFlow checkpoint index (bad magic)")
    footer = data[-_FOOTER_SIZE:]
    _, pos = _block_handle(footer, 0)  # metaindex: unused by tensor bundles
    index_handle, _ = _block_handle(footer, pos)
    entries, num_shards = [], 1
    for _, handle_bytes in _block_entries(_block(data, index_handle, path)):
        handle, _ = _block_handle(handle_bytes, 0)
        for key, value in _block_entries(_block(data, handle, path)):
            if key:
                entries.append(_bundle_entry(key.decode("utf-8"), value, path))
            else:  # the empty key holds the BundleHeaderProto
                num_shards = _proto_fields(value).get(1, [1])[0]
    return num_shards, entries


def _block(data: bytes, handle: tuple[int, int], path: Path) -> bytes:
    offset, size = handle
    contents = data[offset:offset + size]
    trailer = data[offset + size:offset + size + _BLOCK_TRAILER_SIZE]
    if len(trailer) != _BLOCK_TRAILER_SIZE:
        raise CheckpointError(f"{path}: truncated checkpoint index")
    if trailer[0] != 0:
        raise CheckpointError(f"{path}: compressed index blocks are not supported")
    if masked_crc32c(contents + trailer[:1]) != struct.unpack("<I", trailer[1:])[0]:
        raise CheckpointError(f"{path}: index block fails its CRC32C check; the checkpoint "
                              "is damaged, reinstall the model package")
    return contents


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """Decode a block's prefix-compressed (key, value) entries."""
    num_restarts = struct.unpack("<I", block[-4:])[0]
    end = len(block) - 4 - 4 * num_restarts
    entries, key, pos = [], b"", 0
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        entries.append((key, block[pos:pos + value_len]))
        pos += value_len
    return entries


def _bundle_entry(name: str, message: bytes, path: Path) -> TensorEntry:
    fields = _proto_fields(message)
    dtype_code = fields.get(1, [1])[0]
    if dtype_code not in _DTYPES:
        raise CheckpointError(f"{path}: tensor {name!r} has unsupported dtype {dtype_code}")
    if 7 in fields:
        raise CheckpointError(f"{path}: tensor {name!r} is partitioned (slices) - unsupported")
    shape = tuple(_proto_fields(dim).get(1, [0])[0]
                  for dim in _proto_fields(fields.get(2, [b""])[0]).get(2, []))
    return TensorEntry(name=name, dtype=_DTYPES[dtype_code], shape=shape,
                       shard=fields.get(3, [0])[0], offset=fields.get(4, [0])[0],
                       size=fields.get(5, [0])[0], crc32c=fields.get(6, [0])[0])


def _proto_fields(message: bytes) -> dict[int, list]:
    """A minimal protobuf decoder: field number -> values (ints or bytes)."""
    fields: dict[int, list] = {}
    pos = 0
    while pos < len(message):
        tag, pos = _varint(message, pos)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, pos = _varint(message, pos)
        elif wire_type == 1:
            value, pos = struct.unpack("<Q", message[pos:pos + 8])[0], pos + 8
        elif wire_type == 2:
            length, pos = _varint(message, pos)
            value, pos = message[pos:pos + length], pos + length
        elif wire_type == 5:
            value, pos = struct.unpack("<I", message[pos:pos + 4])[0], pos + 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire_type}")
        fields.setdefault(number, []).append(value)
    return fields


def _block_handle(data: bytes, pos: int) -> tuple[tuple[int, int], int]:
    offset, pos = _varint(data, pos)
    size, pos = _varint(data, pos)
    return (offset, size), pos


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
