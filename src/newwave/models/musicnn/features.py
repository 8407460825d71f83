"""musicnn's input: a log-compressed mel spectrogram, as librosa 0.7 computed it.

16 kHz mono, STFT with a periodic Hann window of 512 samples, hop 256, centred frames
(reflect padding), power 2, 96 Slaney-style mel bands from 0 to 8 kHz, then
``log10(10000 * mel + 1)``. The log is taken in float32: musicnn's own code casts the
mel spectrogram to float16 first, which under numpy >= 2 overflows to inf above 6.55
and gives every track the same tags.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # 3 s: one input patch of the network


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_region = hz >= 1000.0
    mel[log_region] = 15.0 + np.log(hz[log_region] / 1000.0) / (np.log(6.4) / 27.0)
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * (200.0 / 3)
    log_region = mel >= 15.0
    hz[log_region] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel[log_region] - 15.0))
    return hz


@lru_cache(maxsize=4)
def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """``[n_mels, 1 + n_fft // 2]`` triangular filters with Slaney area normalisation
    (librosa.filters.mel with htk=False, norm='slaney')."""
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_points = _mel_to_hz(np.linspace(_hz_to_mel(np.array([0.0]))[0],
                                        _hz_to_mel(np.array([sr / 2]))[0], n_mels + 2))
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    return weights.astype(np.float32)


def log_mel(signal: np.ndarray) -> np.ndarray:
    """``[frames, 96]`` float32 log-mel spectrogram of a 16 kHz mono signal."""
    signal = np.asarray(signal, dtype=np.float32)
    if signal.size < 2:
        signal = np.pad(signal, (0, 2 - signal.size))
    pad = N_FFT // 2
    mode = "reflect" if signal.size > pad else "constant"
    padded = np.pad(signal, pad, mode=mode)
    if padded.size < N_FFT:
        padded = np.pad(padded, (0, N_FFT - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)).astype(np.float32) ** 2
    mel = power @ mel_filterbank().T
    return np.log10(np.float32(10000.0) * mel + np.float32(1.0)).astype(np.float32)


def patches(spectrogram: np.ndarray) -> np.ndarray:
    """``[n, 187, 96]`` non-overlapping 3 s patches; the tail is dropped, and a
    spectrogram shorter than one patch is repeated to fill it (musicnn's training
    used repeat-padding)."""
    frames = spectrogram.shape[0]
    if frames < PATCH_FRAMES:
        repeats = -(-PATCH_FRAMES // max(frames, 1))
        spectrogram = np.tile(spectrogram, (repeats, 1))[:PATCH_FRAMES]
        frames = PATCH_FRAMES
    n = frames // PATCH_FRAMES
    return np.ascontiguousarray(spectrogram[: n * PATCH_FRAMES].reshape(n, PATCH_FRAMES, -1))
