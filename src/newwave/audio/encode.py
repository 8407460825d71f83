"""Writing audio files, for the demo library, tests and benchmarks.

libsndfile (soundfile) writes wav/flac/ogg-vorbis; PyAV's bundled FFmpeg writes
mp3, m4a (AAC) and opus.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile as sf

_SOUNDFILE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"),
                      ".ogg": ("OGG", "VORBIS")}
# extension -> (container, codec, sample rates the codec accepts or None for any)
_PYAV_FORMATS = {".mp3": ("mp3", "libmp3lame", None), ".m4a": ("mp4", "aac", None),
                 ".opus": ("ogg", "libopus", (48000, 24000, 16000, 12000, 8000))}

WRITABLE_EXTENSIONS = frozenset(_SOUNDFILE_FORMATS) | frozenset(_PYAV_FORMATS)


def write_audio(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono ``[n]`` or multichannel ``[n, channels]`` float samples in [-1, 1]."""
    ext = path.suffix.lower()
    samples = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    if ext in _SOUNDFILE_FORMATS:
        fmt, subtype = _SOUNDFILE_FORMATS[ext]
        sf.write(path, samples, sample_rate, format=fmt, subtype=subtype)
    elif ext in _PYAV_FORMATS:
        _write_with_pyav(path, samples, sample_rate, *_PYAV_FORMATS[ext])
    else:
        raise ValueError(f"{path}: cannot write {ext or 'extensionless'} files; "
                         f"use one of {sorted(WRITABLE_EXTENSIONS)}")


def _write_with_pyav(path: Path, samples: np.ndarray, sample_rate: int, container_fmt: str,
                     codec: str, rates: tuple[int, ...] | None) -> None:
    planar = samples.reshape(samples.shape[0], -1).T  # [channels, n]
    layout = "mono" if planar.shape[0] == 1 else "stereo"
    out_rate = sample_rate if rates is None or sample_rate in rates else rates[0]
    with av.open(str(path), mode="w", format=container_fmt) as container:
        stream = container.add_stream(codec, rate=out_rate, layout=layout)
        frame_size = stream.codec_context.frame_size or 1024
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout,
                                      rate=out_rate, frame_size=frame_size)
        source = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar), format="fltp",
                                            layout=layout)
        source.sample_rate = sample_rate
        source.pts = None
        for frame in [*resampler.resample(source), *resampler.resample(None)]:
            frame.pts = None
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
