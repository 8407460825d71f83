from __future__ import annotations

import numpy as np
import pytest

from newwave.demo.synth import PIECES, SAMPLE_RATE, render
from newwave.models.musicnn import TAGS
from newwave.models.musicnn.features import PATCH_FRAMES, log_mel, mel_filterbank, patches

PIANO, TECHNO = PIECES[0], PIECES[1]


def tag(analysis, name: str) -> float:
    return float(analysis.tags[TAGS.index(name)])


def top(analysis, n: int) -> list[str]:
    return [TAGS[i] for i in np.argsort(-analysis.tags)[:n]]


def test_log_mel_shape_band_and_float32_log() -> None:
    t = np.arange(16000 * 2) / 16000
    spectrogram = log_mel((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    assert spectrogram.shape == (1 + 32000 // 256, 96) and spectrogram.dtype == np.float32
    peak_band = int(np.argmax(spectrogram[10]))
    filters = mel_filterbank()
    assert filters[peak_band, round(1000 / (8000 / 256))] > 0  # 1 kHz lands in its band
    # The float16 trap: loud input must not overflow to inf.
    loud = log_mel(np.ones(16000, dtype=np.float32) * 0.99)
    assert np.isfinite(loud).all() and loud.max() > 6.55


def test_patches_drop_the_tail_and_loop_short_input() -> None:
    spectrogram = np.arange(400 * 96, dtype=np.float32).reshape(400, 96)
    cut = patches(spectrogram)
    assert cut.shape == (2, PATCH_FRAMES, 96)
    assert (cut[1, 0] == spectrogram[PATCH_FRAMES]).all()
    short = patches(spectrogram[:50])
    assert short.shape == (1, PATCH_FRAMES, 96)
    assert (short[0, 50] == spectrogram[0]).all()


def test_golden_tag_probabilities(musicnn) -> None:
    """Pinned outputs of the port on deterministic input; a change here means the
    network, the weights loading or the front end changed."""
    piano = musicnn.analyse(render(PIANO, 9.0, seed=0), SAMPLE_RATE)
    techno = musicnn.analyse(render(TECHNO, 9.0, seed=0), SAMPLE_RATE)
    assert piano.patches == 3
    assert tag(piano, "mtt:piano") == pytest.approx(0.6251, abs=2e-3)
    assert tag(piano, "msd:jazz") == pytest.approx(0.4498, abs=2e-3)
    assert tag(techno, "msd:electronic") == pytest.approx(0.6336, abs=2e-3)
    assert tag(techno, "mtt:techno") == pytest.approx(0.5359, abs=2e-3)
    assert piano.embedding.shape == (400,) and np.linalg.norm(piano.embedding) == \
        pytest.approx(1.0, abs=1e-5)


def test_known_signals_get_the_expected_tags(musicnn) -> None:
    piano = musicnn.analyse(render(PIANO, 12.0, seed=1), SAMPLE_RATE)
    techno = musicnn.analyse(render(TECHNO, 12.0, seed=1), SAMPLE_RATE)
    assert top(piano, 1) == ["mtt:piano"]
    assert {"mtt:techno", "msd:electronic"} <= set(top(techno, 3))
    assert tag(piano, "mtt:piano") > 4 * tag(techno, "mtt:piano")
    assert tag(techno, "mtt:techno") > 4 * tag(piano, "mtt:techno")
    # A 1 s clip (shorter than one patch) is looped, not rejected.
    assert musicnn.analyse(render(PIANO, 1.0), SAMPLE_RATE).patches == 1


def test_embedding_groups_similar_sounds(musicnn) -> None:
    a = musicnn.analyse(render(TECHNO, 9.0, seed=1), SAMPLE_RATE).embedding
    b = musicnn.analyse(render(TECHNO, 9.0, seed=2), SAMPLE_RATE).embedding
    piano = musicnn.analyse(render(PIANO, 9.0, seed=1), SAMPLE_RATE).embedding
    assert a @ b > a @ piano + 0.1


def test_onnx_runtime_and_pytorch_backends_agree(musicnn) -> None:
    from newwave.models.musicnn import MusicnnAudioModel

    assert musicnn.backend == "onnx"  # onnxruntime is a dependency: the default
    torch_model = MusicnnAudioModel(backend="torch")
    audio = render(TECHNO, 7.0, seed=4)
    onnx, reference = musicnn.analyse(audio, SAMPLE_RATE), torch_model.analyse(audio, SAMPLE_RATE)
    assert np.allclose(onnx.tags, reference.tags, atol=1e-5)
    assert np.allclose(onnx.embedding, reference.embedding, atol=1e-5)
