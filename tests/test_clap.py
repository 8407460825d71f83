"""The CLAP path on a tiny randomly initialised model saved to disk: the real loading,
windowing and pooling code, no download."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from newwave.models.clap import ClapAudioTextModel
from newwave.models.registry import load_audio_model
from newwave.models.text import ModelLoadError


@pytest.fixture(scope="module")
def clap(tiny_clap_dir: Path) -> ClapAudioTextModel:
    return ClapAudioTextModel(str(tiny_clap_dir))


def noise(seconds: float, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(48000 * seconds))).astype(np.float32)


def test_identity_and_spaces(clap: ClapAudioTextModel, tiny_clap_dir: Path) -> None:
    assert clap.info.name == f"clap:{tiny_clap_dir.name}" and clap.info.dim == 16
    assert clap.spaces == {"audio-text": clap.info, "audio": clap.info}
    assert load_audio_model(f"clap:{tiny_clap_dir}").info == clap.info


def test_long_audio_is_the_mean_of_raw_10s_window_embeddings(clap: ClapAudioTextModel) -> None:
    first, second = noise(10, 1), noise(10, 2)
    track = clap.embed_waveform(np.concatenate([first, second, noise(0.5, 3)]), 48000)
    assert track.shape == (16,) and np.linalg.norm(track) == pytest.approx(1.0, abs=1e-5)

    def raw(clip: np.ndarray) -> torch.Tensor:
        features = clap.processor.feature_extractor([clip], sampling_rate=48000,
                                                    truncation="rand_trunc", return_tensors="pt")
        with torch.inference_mode():
            out = clap.model.audio_model(input_features=features["input_features"])
            return clap.model.audio_projection(out.pooler_output)[0]

    expected = (raw(first) + raw(second)) / 2  # the 0.5 s tail is under a second: dropped
    expected = (expected / expected.norm()).numpy()
    assert np.allclose(track, expected, atol=1e-5)
    # Short clips and other sample rates work too.
    assert clap.embed_audio(noise(3, 4)[::3], 16000)["audio"].shape == (16,)


def test_text_side_reports_truncation(clap: ClapAudioTextModel) -> None:
    short, long = clap.embed_text(["calm piano", "piano " * 200])
    assert short.note is None and short.vector.shape == (16,)
    assert long.note is not None and "truncated" in long.note and "77" in long.note


def test_missing_weights_give_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="cannot load CLAP model"):
        ClapAudioTextModel(str(tmp_path / "no-weights"))
