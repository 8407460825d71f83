"""Cutting a signal into fixed-length windows for encoders that see a fixed span."""

from __future__ import annotations

from typing import Literal

import numpy as np

TailPolicy = Literal["drop", "pad"]


def windows(signal: np.ndarray, size: int, hop: int | None = None, *,
            tail: TailPolicy = "drop") -> np.ndarray:
    """Return ``[n, size]`` windows of a 1-d signal, ``hop`` samples apart (default: no overlap).

    ``tail="drop"`` discards a last partial window (musicnn's behaviour);
    ``tail="pad"`` zero-pads it, so a signal shorter than one window still yields one.
    """
    if signal.ndim != 1:
        raise ValueError(f"expected a 1-d signal, got shape {signal.shape}")
    if size <= 0:
        raise ValueError(f"window size must be positive, got {size}")
    hop = size if hop is None else hop
    if hop <= 0:
        raise ValueError(f"hop must be positive, got {hop}")
    if tail == "pad" and signal.size > 0:
        remainder = max(signal.size - size, 0) % hop
        needed = size if signal.size < size else (hop - remainder) % hop
        signal = np.pad(signal, (0, needed))
    if signal.size < size:
        return np.zeros((0, size), dtype=signal.dtype)
    view = np.lib.stride_tricks.sliding_window_view(signal, size)[::hop]
    return np.ascontiguousarray(view)
