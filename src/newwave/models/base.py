"""What every model shares: an identity stored with its vectors, and small helpers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr


@dataclass(frozen=True)
class ModelInfo:
    """Identifies a vector space. Vectors are only ever compared within one space."""

    name: str
    version: str
    dim: int

    def __str__(self) -> str:
        return f"{self.name}@{self.version} ({self.dim}-d)"


class ModelMismatchError(ValueError):
    """Vectors from different models (or versions, or dimensions) were about to be mixed."""


def ensure_same_space(stored: ModelInfo, incoming: ModelInfo) -> None:
    if stored != incoming:
        raise ModelMismatchError(
            f"vectors of {incoming} cannot be mixed with stored vectors of {stored}; "
            "re-index with one model (`newwave index`) or switch the configured model back")


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Unit-length rows (or vector); zero vectors stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def resample(waveform: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1:
        raise ValueError(f"expected a mono waveform, got shape {waveform.shape}")
    if source_rate == target_rate:
        return waveform
    return soxr.resample(waveform, source_rate, target_rate).astype(np.float32)
