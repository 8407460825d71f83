"""Audio decoding (PyAV), windowing, and writing test/demo files."""

from newwave.audio.decode import AudioDecodeError, AudioInfo, decode, probe
from newwave.audio.windows import windows

__all__ = ["AudioDecodeError", "AudioInfo", "decode", "probe", "windows"]
