from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from newwave.models.musicnn import Checkpoint, CheckpointError
from newwave.models.musicnn.checkpoint import masked_crc32c
from newwave.models.musicnn.model import musicnn_weights_dir

# Every model tensor of a musicnn checkpoint (Adam slots and step counters aside).
EXPECTED_SHAPES = {
    "batch_normalization": (1,), "batch_normalization_1": (204,),
    "batch_normalization_2": (204,), "batch_normalization_3": (51,),
    "batch_normalization_4": (51,), "batch_normalization_5": (51,),
    "batch_normalization_6": (64,), "batch_normalization_7": (64,),
    "batch_normalization_8": (64,), "batch_normalization_9": (1506,),
    "batch_normalization_10": (200,),
    "conv2d/kernel": (7, 38, 1, 204), "conv2d_1/kernel": (7, 67, 1, 204),
    "conv2d_2/kernel": (128, 1, 1, 51), "conv2d_3/kernel": (64, 1, 1, 51),
    "conv2d_4/kernel": (32, 1, 1, 51), "conv2d_5/kernel": (7, 561, 1, 64),
    "conv2d_6/kernel": (7, 64, 1, 64), "conv2d_7/kernel": (7, 64, 1, 64),
    "dense/kernel": (1506, 200), "dense_1/kernel": (200, 50),
}


@pytest.mark.parametrize("model", ["MSD_musicnn", "MTT_musicnn"])
def test_every_tensor_has_its_shape_and_passes_crc(model: str) -> None:
    checkpoint = Checkpoint(f"{musicnn_weights_dir() / model}/")
    assert checkpoint.num_shards == 1
    model_tensors = {n for n in checkpoint.names() if "Adam" not in n and "power" not in n}
    assert len(model_tensors) == 11 * 4 + 8 * 2 + 2 * 2
    for prefix, shape in EXPECTED_SHAPES.items():
        if prefix.startswith("batch_normalization"):
            for part in ("gamma", "beta", "moving_mean", "moving_variance"):
                assert checkpoint.entries[f"{prefix}/{part}"].shape == shape
        else:
            assert checkpoint.entries[prefix].shape == shape
            bias = prefix.replace("kernel", "bias")
            assert checkpoint.entries[bias].shape == (shape[-1],)
    tensors = checkpoint.read_all()  # reads every tensor, checking every CRC
    assert tensors["dense/kernel"].dtype.name == "float32"
    variance = tensors["batch_normalization_9/moving_variance"]
    assert (variance > 0).all()


def test_masked_crc32c_matches_the_reference() -> None:
    # CRC32C("123456789") = 0xE3069283 (RFC 3720); masked as in LevelDB/TensorFlow.
    crc = 0xE3069283
    assert masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_damaged_tensor_data_is_detected(tmp_path: Path) -> None:
    source = musicnn_weights_dir() / "MSD_musicnn"
    target = tmp_path / "MSD_musicnn"
    shutil.copytree(source, target)
    checkpoint = Checkpoint(f"{target}/")
    entry = checkpoint.entries["dense/kernel"]
    data_file = target / ".data-00000-of-00001"
    data = bytearray(data_file.read_bytes())
    data[entry.offset + 10] ^= 0xFF
    data_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="dense/kernel.*CRC32C"):
        checkpoint.read("dense/kernel")
    checkpoint.read("dense/bias")  # other tensors are intact


def test_damaged_or_missing_index_is_detected(tmp_path: Path) -> None:
    index = (musicnn_weights_dir() / "MSD_musicnn" / ".index").read_bytes()
    damaged = bytearray(index)
    damaged[20] ^= 0xFF
    (tmp_path / "x.index").write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match="CRC32C"):
        Checkpoint(tmp_path / "x")
    (tmp_path / "y.index").write_bytes(b"\0" * 100)
    with pytest.raises(CheckpointError, match="bad magic"):
        Checkpoint(tmp_path / "y")
    with pytest.raises(CheckpointError, match="cannot read checkpoint index"):
        Checkpoint(tmp_path / "absent")
