from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from newwave.audio.encode import write_audio
from newwave.catalog import Catalog
from newwave.demo.synth import build_synthetic_library

SR = 22050
CRASH_MARKER_ENV = "NEWWAVE_TEST_CRASH_MARKER"
CRASH_MARKER = "NEWWAVE-TEST-CRASH-HERE"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def skip_or_fail(reason: str) -> None:
    """Skip the calling test, except in CI (``CI=true``), where a missing prerequisite is
    a broken setup and fails with the reason instead of hiding as a skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: prerequisites must be present, so this fails "
                    "instead of skipping)", pytrace=False)
    pytest.skip(reason)


def require_shared() -> Path:
    """``../shared/data``, or a skip (a failure in CI) when this checkout lacks it."""
    if not SHARED_DATA.is_dir():
        skip_or_fail(f"{SHARED_DATA} is not present in this checkout")
    return SHARED_DATA


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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, synthetic_library_template: Path):
    """A real `newwave serve` process on loopback over an indexed generated library.
    Yields (base URL, data dir, library folder)."""
    import os
    import shutil
    import subprocess
    import sys

    base = tmp_path_factory.mktemp("live")
    library = base / "library"
    shutil.copytree(synthetic_library_template, library)
    # The crash marker lets tests make the server's decoder worker crash on purpose.
    env = {**os.environ, "NEWWAVE_DATA_DIR": str(base / "data"), "COLUMNS": "200",
           CRASH_MARKER_ENV: CRASH_MARKER}
    subprocess.run([sys.executable, "-m", "newwave.cli", "index", str(library)], env=env,
                   check=True, capture_output=True, timeout=600)
    with serving(env, base / "server.log") as url:
        yield url, base / "data", library


@contextmanager
def serving(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """A real `newwave serve` process on a free loopback port, until the block ends;
    yields its base URL once /health answers."""
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    with open(log_path, "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "newwave.cli", "serve", "--port",
                                   str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"server did not start: {log_path.read_text()}")
            time.sleep(0.3)
        try:
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture(scope="session")
def tiny_clap_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised CLAP (model + processor) saved to disk."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor,
                              RobertaTokenizerFast)

    folder = tmp_path_factory.mktemp("tiny-clap")
    torch.manual_seed(0)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["calm piano music", "fast techno beat", "songs about home"] * 10,
                            vocab_size=300,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tokenizer = RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>",
                                     eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                     mask_token="<mask>", cls_token="<s>", sep_token="</s>")
    config = ClapConfig(
        text_config=dict(vocab_size=tokenizer.vocab_size + 5, hidden_size=32,
                         num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                         max_position_embeddings=130, projection_dim=16, pad_token_id=1),
        audio_config=dict(hidden_size=64, patch_embeds_hidden_size=32, depths=[1, 1],
                          num_attention_heads=[2, 2], projection_dim=16),
        projection_dim=16)
    model = ClapModel(config)
    # A random one-layer text tower reads mostly its <s> token, so every caption lands on
    # nearly one vector (cosine 0.99): the collapse that ClapAudioTextModel refuses. With
    # the <s>, position and token-type embeddings zeroed, the pooled token is made of the
    # caption's words (mean pairwise cosine about 0.56), as in a trained model.
    with torch.no_grad():
        embeddings = model.text_model.embeddings
        embeddings.word_embeddings.weight[tokenizer.bos_token_id].zero_()
        embeddings.position_embeddings.weight.zero_()
        embeddings.token_type_embeddings.weight.zero_()
    model.save_pretrained(folder)
    ClapProcessor(feature_extractor=ClapFeatureExtractor(), tokenizer=tokenizer).save_pretrained(folder)
    return folder




PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def secured_server(tmp_path_factory: pytest.TempPathFactory, live_server):
    """A second real server over a copy of the live server's library that requires a
    password (`newwave serve --password`). Yields (base URL, data dir)."""
    import os
    import shutil

    _, data_dir, _ = live_server
    base = tmp_path_factory.mktemp("secured")
    shutil.copytree(data_dir, base / "data")
    env = {**os.environ, "NEWWAVE_DATA_DIR": str(base / "data"), "NEWWAVE_PASSWORD": PASSWORD}
    with serving(env, base / "server.log") as url:
        yield url, base / "data"
