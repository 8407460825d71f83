from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from conftest import SR, make_audio, tone
from newwave.audio import AudioDecodeError, decode, probe, windows
from newwave.audio.encode import WRITABLE_EXTENSIONS, write_audio


@pytest.mark.parametrize("ext", sorted(WRITABLE_EXTENSIONS))
def test_decode_every_format_to_mono_float32_at_requested_rate(tmp_path: Path, ext: str) -> None:
    path = make_audio(tmp_path / f"a{ext}", seconds=2.0, freq=440.0)
    samples = decode(path, 16000)
    assert samples.dtype == np.float32 and samples.ndim == 1
    # Lossy codecs add priming/padding (AAC the most); the length stays within 100 ms.
    assert abs(samples.size - 32000) < 0.1 * 16000
    spectrum = np.abs(np.fft.rfft(samples[2000:30000]))
    peak_hz = np.argmax(spectrum) * 16000 / (30000 - 2000)
    assert abs(peak_hz - 440) < 5
    info = probe(path)
    assert info.channels == 1 and abs(info.duration - 2.0) < 0.1


def test_stereo_is_averaged_not_summed(tmp_path: Path) -> None:
    mono = tone(1.0)
    path = tmp_path / "stereo.wav"
    write_audio(path, np.stack([mono, mono], axis=1), SR)
    samples = decode(path, SR)
    assert probe(path).channels == 2
    assert np.abs(samples).max() == pytest.approx(0.5, abs=0.01)


def test_offset_and_max_seconds_select_a_slice(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "a.wav", seconds=3.0)
    assert decode(path, 8000, offset_seconds=1.0, max_seconds=0.5).size == 4000
    assert decode(path, 8000, offset_seconds=2.5).size == 4000


def test_decode_from_file_object(tmp_path: Path) -> None:
    data = make_audio(tmp_path / "a.ogg").read_bytes()
    assert decode(io.BytesIO(data), 16000).size > 30000


def test_garbage_file_raises_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp3"
    path.write_bytes(b"this is not audio at all" * 100)
    with pytest.raises(AudioDecodeError, match=r"broken\.mp3: cannot decode audio"):
        decode(path, 16000)


def test_truncated_file_is_reported_corrupt(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "a.flac", seconds=2.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    probe(path)  # the header alone looks fine ...
    with pytest.raises(AudioDecodeError, match="corrupt audio data"):
        decode(path, 16000)  # ... only a full decode finds the damage


def test_empty_and_missing_files(tmp_path: Path) -> None:
    for name in ("empty.wav", "empty.flac", "empty.mp3", "empty.ogg"):
        empty = tmp_path / name
        empty.write_bytes(b"")
        with pytest.raises(AudioDecodeError):
            probe(empty)
    with pytest.raises(AudioDecodeError, match="missing.ogg"):
        decode(tmp_path / "missing.ogg", 16000)


def test_image_only_file_has_no_audio_stream(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "picture.png"
    Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(AudioDecodeError, match="no audio stream"):
        probe(path)


def test_windows_drop_and_pad() -> None:
    signal = np.arange(10, dtype=np.float32)
    dropped = windows(signal, 4)
    assert dropped.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    padded = windows(signal, 4, tail="pad")
    assert padded.tolist()[-1] == [8, 9, 0, 0]
    assert windows(signal, 4, hop=2).shape == (4, 4)
    assert windows(signal, 4, hop=3, tail="pad").shape == (3, 4)  # starts 0, 3, 6 (+pad)
    short = np.ones(3, dtype=np.float32)
    assert windows(short, 4).shape == (0, 4)
    assert windows(short, 4, tail="pad").tolist() == [[1, 1, 1, 0]]
    assert windows(np.zeros(0, dtype=np.float32), 4, tail="pad").shape == (0, 4)
    with pytest.raises(ValueError):
        windows(np.zeros((2, 2)), 4)


@pytest.mark.parametrize(("channels", "subtype", "ext"), [
    (6, "FLOAT", ".wav"), (8, "FLOAT", ".wav"), (8, "PCM_16", ".wav"), (8, "PCM_24", ".flac"),
    (12, "FLOAT", ".wav")])
def test_multichannel_files_decode_to_the_mean_of_their_channels(
        tmp_path: Path, channels: int, subtype: str, ext: str) -> None:
    """5.1 and 7.1 files used to crash the process (PyAV's to_ndarray on 8 planes)."""
    import soundfile as sf

    # Every channel differs (frequency and level), so a dropped or repeated channel shows.
    t = np.arange(SR) / SR
    planes = np.stack([(0.9 / channels) * (1 + c % 3) * np.sin(2 * np.pi * (220 + 110 * c) * t)
                       for c in range(channels)], axis=1).astype(np.float32)
    path = tmp_path / f"surround{ext}"
    sf.write(path, planes, SR, subtype=subtype)
    written, _ = sf.read(path, dtype="float32")
    assert probe(path).channels == channels
    samples = decode(path, SR)
    assert samples.dtype == np.float32 and samples.shape == (SR,)
    np.testing.assert_allclose(samples, written.mean(axis=1), atol=1e-6)
    assert decode(path, 16000, max_seconds=0.5).size == 8000
