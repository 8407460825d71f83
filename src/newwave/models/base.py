"""What every model shares: an identity stored with its vectors, and small helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import soxr

# What a vector describes: "audio-text" vectors meet text queries (a joint space),
# "audio" vectors meet other audio (similar tracks, recorded snippets), "lyrics"
# vectors meet text through the text encoder.
VectorKind = Literal["audio-text", "audio", "lyrics"]


@dataclass(frozen=True)
class ModelInfo:
    """Identifies a vector space. Vectors are only ever compared within one space."""

    name: str
    version: str
    dim: int

    def __str__(self) -> str:
        return f"{self.name}@{self.version} ({self.dim}-d)"


@dataclass(frozen=True)
class QueryVector:
    """A text query in a model's space, with what the model made of it."""

    vector: np.ndarray
    confident: bool = True  # False: the model has no signal for this query
    note: str | None = None  # e.g. the tags matched, or that the text was truncated
    strength: float = 1.0  # how closely the query matched the space (e.g. best tag similarity)


class AudioModel(Protocol):
    """Turns a waveform into one vector per kind it serves (see ``spaces``)."""

    sample_rate: int  # the rate it wants; other rates are resampled

    @property
    def spaces(self) -> dict[VectorKind, ModelInfo]: ...

    def embed_audio(self, waveform: np.ndarray, sample_rate: int) -> dict[VectorKind, np.ndarray]: ...

    def text_queries(self, text_encoder: TextEncoder) -> TextQueryModel:
        """The model that puts text queries into this model's audio–text space."""
        ...


class TextEncoder(Protocol):
    """Text -> unit vectors (lyrics and queries)."""

    @property
    def info(self) -> ModelInfo: ...

    def encode(self, texts: list[str]) -> np.ndarray: ...


class TextQueryModel(Protocol):
    """The text side of an audio–text space."""

    # True when it reads queries through the text encoder: ``embed_encoded`` then takes
    # the text encoder's vectors, so a search encodes its query once for both signals.
    shares_text_encoder: bool

    @property
    def info(self) -> ModelInfo: ...

    def embed_text(self, queries: list[str]) -> list[QueryVector]: ...

    def embed_encoded(self, query_vectors: np.ndarray) -> list[QueryVector]: ...

    def calibrate(self, tracks: np.ndarray) -> np.ndarray:
        """The library's track vectors ``[n, dim]`` as the values a query's vector is
        scored against (e.g. tag probabilities made comparable across tags); a joint
        space returns them as they are."""
        ...


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
