from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from newwave.audio.encode import write_audio
from newwave.catalog import Catalog
from newwave.demo.synth import build_synthetic_library

SR = 22050


def tone(seconds: float = 2.0, freq: float = 440.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_audio(path: Path, seconds: float = 2.0, freq: float = 440.0) -> Path:
    """A real encoded audio file (format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_audio(path, tone(seconds, freq), SR)
    return path


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    with Catalog(tmp_path / "data" / "catalog.sqlite") as cat:
        yield cat


@pytest.fixture(scope="session")
def synthetic_library_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic") / "library"
    build_synthetic_library(folder, seconds=4.0)
    return folder


@pytest.fixture
def synthetic_library(tmp_path: Path, synthetic_library_template: Path) -> Path:
    """A fresh copy per test, free to modify."""
    import shutil

    target = tmp_path / "library"
    shutil.copytree(synthetic_library_template, target)
    return target


@pytest.fixture(scope="session")
def text_encoder():
    from newwave.models.text import SentenceTransformerEncoder

    return SentenceTransformerEncoder()


@pytest.fixture(scope="session")
def musicnn():
    from newwave.models.musicnn import MusicnnAudioModel

    return MusicnnAudioModel()
