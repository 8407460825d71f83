"""Decoding any audio file PyAV (FFmpeg) understands into mono float32 samples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
from newwave.errors import InvalidInput

AudioSource = str | Path | BinaryIO


class AudioDecodeError(InvalidInput):
    """The audio could not be read; the message names the file and what to do."""

    def __init__(self, source: AudioSource, reason: str) -> None:
        self.source = _describe(source)
        self.reason = reason
        super().__init__(
            f"{self.source}: cannot decode audio ({reason}); check that the file is a "
            "complete mp3/flac/ogg/opus/m4a/wav file, or re-encode it")

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt from (source, reason), not the formatted message, so the error survives
        # pickling (audio worker processes send it back to the caller).
        return type(self), (self.source, self.reason), self.__dict__


@dataclass(frozen=True)
class AudioInfo:
    """Technical facts about an audio stream, read without decoding it."""

    container: str
    codec: str
    duration: float | None
    sample_rate: int
    channels: int
    bitrate: int | None


def probe(source: AudioSource) -> AudioInfo:
    """Open the container and describe its first audio stream."""
    with _open(source) as container:
        stream = _audio_stream(container, source)
        if not stream.codec_context.sample_rate or not stream.codec_context.channels:
            raise AudioDecodeError(source, "the audio stream is empty or its header is broken")
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        return AudioInfo(
            container=container.format.name,
            codec=stream.codec_context.name,
            duration=duration,
            sample_rate=stream.codec_context.sample_rate,
            channels=stream.codec_context.channels,
            bitrate=container.bit_rate or None,
        )


def decode(source: AudioSource, sample_rate: int, *, max_seconds: float | None = None,
           offset_seconds: float = 0.0) -> np.ndarray:
    """Decode to a mono float32 array at ``sample_rate`` (channels are averaged).

    ``offset_seconds``/``max_seconds`` select a slice without decoding beyond it.
    Raises :class:`AudioDecodeError` for unreadable, empty or corrupt audio.
    """
    # Packed float at the source layout, channels averaged in numpy: FFmpeg's own downmix
    # sums channels at -3 dB (stereo would be louder than its mono twin), and planar
    # frames must not reach ``to_ndarray``: PyAV counts planes by scanning for a NULL
    # pointer, which runs past the 8 inline pointers of a 7.1 frame and segfaults.
    resampler = av.AudioResampler(format="flt", rate=sample_rate)
    skip = int(round(offset_seconds * sample_rate))
    limit = None if max_seconds is None else skip + int(round(max_seconds * sample_rate))
    chunks: list[np.ndarray] = []
    collected = 0
    with _open(source) as container:
        stream = _audio_stream(container, source)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = _mono(out)
                    chunks.append(chunk)
                    collected += chunk.size
                if limit is not None and collected >= limit:
                    break
            else:
                chunks.extend(_mono(out) for out in resampler.resample(None))
        except (av.error.FFmpegError, ValueError) as exc:
            raise AudioDecodeError(source, f"corrupt audio data: {exc}") from exc
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    samples = samples[skip:limit]
    if samples.size == 0:
        raise AudioDecodeError(source, "no audio samples decoded")
    return np.ascontiguousarray(samples, dtype=np.float32)


def _mono(frame: av.AudioFrame) -> np.ndarray:
    """The mean over channels of a packed (interleaved) ``flt`` frame."""
    channels = len(frame.layout.channels)
    return frame.to_ndarray().reshape(-1, channels).mean(axis=1, dtype=np.float32)


def _open(source: AudioSource) -> av.container.InputContainer:
    try:
        return av.open(source if not isinstance(source, Path) else str(source), mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise AudioDecodeError(source, f"not a readable audio container: {exc}") from exc


def _audio_stream(container: av.container.InputContainer, source: AudioSource) -> av.AudioStream:
    if not container.streams.audio:
        raise AudioDecodeError(source, "the file holds no audio stream")
    return container.streams.audio[0]


def _describe(source: AudioSource) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return getattr(source, "name", None) or "<audio stream>"
