"""LAION CLAP through transformers, for users who have the weights.

CLAP's audio encoder sees 10 s at 48 kHz. A track is cut into consecutive 10 s
windows (a tail of at least ``min_tail_seconds`` becomes one more window, which the
feature extractor repeat-pads); the *raw* projected window embeddings are averaged and
the mean is L2-normalised. The text side truncates at ``max_text_tokens`` (CLAP was
trained on 77) and says so in the query's note.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from newwave.audio.windows import windows
from newwave.models.base import ModelInfo, QueryVector, VectorKind, l2_normalize, resample
from newwave.models.text import ModelLoadError, quiet_model_loading

# Not laion/larger_clap_music: its checkpoint has a broken text projection (every caption
# embeds to nearly the same vector). clap-htsat-unfused is the base the New Wave report tuned.
DEFAULT_CLAP_MODEL = "laion/clap-htsat-unfused"
# Captions that any working text tower separates; a model whose mean pairwise cosine over
# them is above COLLAPSE_COSINE is refused (healthy CLAPs stay well below 0.9).
COLLAPSE_PROBES = ("a solo piano playing a slow sad melody", "heavy metal with distorted guitars",
                   "a rapper over a hip-hop beat", "birds singing in a forest",
                   "an orchestra playing a triumphant march", "a techno track for dancing")
COLLAPSE_COSINE = 0.98


class ClapAudioTextModel:
    sample_rate = 48000
    window_seconds = 10.0

    def __init__(self, name_or_path: str = DEFAULT_CLAP_MODEL, *, max_text_tokens: int = 77,
                 batch_size: int = 4, min_tail_seconds: float = 1.0, device: str = "cpu",
                 refuse_collapsed: bool = True) -> None:
        """``refuse_collapsed``: check the text side at load (see ``_refuse_collapsed_text``);
        off only for a model known to be a toy (a few training steps of a tiny config)."""
        from transformers import ClapModel, ClapProcessor

        quiet_model_loading()
        self.name_or_path = name_or_path
        try:
            self.model = ClapModel.from_pretrained(name_or_path).to(device).eval()
            self.processor = ClapProcessor.from_pretrained(name_or_path)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"cannot load CLAP model {name_or_path!r} ({exc}); download its weights on a "
                "machine with access to the model hub and point NewWave at the local folder "
                "(audio_model = \"clap:/path/to/folder\")") from exc
        self.device = device
        self.max_text_tokens = max_text_tokens
        self.batch_size = batch_size
        self.min_tail_seconds = min_tail_seconds
        if refuse_collapsed:
            self._refuse_collapsed_text()

    @torch.inference_mode()
    def _refuse_collapsed_text(self) -> None:
        """A checkpoint whose text side maps every caption to (nearly) one vector ranks
        the same tracks for every query (laion/larger_clap_music on the hub: mean
        pairwise cosine 0.999). Unrelated captions must land apart, or the model is
        refused before it indexes anything."""
        raw = self.project_text(list(COLLAPSE_PROBES)).cpu().numpy().astype(np.float64)
        norms = np.linalg.norm(raw, axis=1)
        if norms.max() < 1e-6:
            spread = 1.0
        else:
            unit = raw / np.maximum(norms[:, None], 1e-12)
            cosines = unit @ unit.T
            spread = float(cosines[np.triu_indices(len(unit), k=1)].mean())
        if spread > COLLAPSE_COSINE:
            raise ModelLoadError(
                f"CLAP model {self.name_or_path!r} has a broken text projection: unrelated "
                f"captions embed to nearly the same vector (mean pairwise cosine "
                f"{spread:.3f}), so every query would return the same tracks. Use "
                f"{DEFAULT_CLAP_MODEL!r} or laion/larger_clap_general instead.")

    @cached_property
    def info(self) -> ModelInfo:
        params = list(self.model.parameters())
        fingerprint = json.dumps({"config": self.model.config.to_dict(),
                                  "weights": [round(float(p.detach().double().sum()), 6)
                                              for p in (params[0], params[-1])]},
                                 sort_keys=True, default=str)
        name = Path(self.name_or_path).name if os.path.isdir(self.name_or_path) \
            else self.name_or_path
        return ModelInfo(name=f"clap:{name}",
                         version=hashlib.sha1(fingerprint.encode()).hexdigest()[:12],
                         dim=int(self.model.config.projection_dim))

    @property
    def _truncation(self) -> str:
        """Windows are at most 10 s, so nothing is cut; the mode must only match how the
        model was built (fused models take 4 mel views, unfused ones 1)."""
        return "fusion" if self.model.config.audio_config.enable_fusion else "rand_trunc"

    @property
    def spaces(self) -> dict[VectorKind, ModelInfo]:
        return {"audio-text": self.info, "audio": self.info}

    def embed_audio(self, waveform: np.ndarray, sample_rate: int) -> dict[VectorKind, np.ndarray]:
        vector = self.embed_waveform(waveform, sample_rate)
        return {"audio-text": vector, "audio": vector}

    @torch.inference_mode()
    def embed_waveform(self, waveform: np.ndarray, sample_rate: int) -> np.ndarray:
        signal = resample(waveform, sample_rate, self.sample_rate)
        if signal.size == 0:
            raise ValueError("cannot embed an empty waveform")
        clips = clap_clips(signal, self.sample_rate, self.window_seconds, self.min_tail_seconds)
        raw = [self.project_audio(clips[start:start + self.batch_size])
               for start in range(0, len(clips), self.batch_size)]
        return l2_normalize(torch.cat(raw).mean(dim=0).cpu().numpy())

    shares_text_encoder = False  # CLAP reads queries with its own text tower

    def text_queries(self, text_encoder: object) -> ClapAudioTextModel:
        return self

    def embed_encoded(self, query_vectors: np.ndarray) -> list[QueryVector]:
        raise TypeError("CLAP reads query text itself; use embed_text")

    def calibrate(self, tracks: np.ndarray) -> np.ndarray:
        return tracks  # a joint space: cosine similarities are comparable as they are

    @torch.inference_mode()
    def embed_text(self, queries: list[str]) -> list[QueryVector]:
        full_lengths = [len(ids) for ids in self.processor.tokenizer(queries)["input_ids"]]
        vectors = l2_normalize(self.project_text(queries).cpu().numpy())
        return [QueryVector(vector, note=(f"truncated from {n} to {self.max_text_tokens} tokens"
                                          if n > self.max_text_tokens else None))
                for vector, n in zip(vectors, full_lengths)]

    def project_audio(self, clips: list[np.ndarray]) -> torch.Tensor:
        """Raw (unnormalised) projected embeddings of clips of at most 10 s at 48 kHz.
        Differentiable unless the caller is in inference mode (the trainer uses it)."""
        features = self.processor.feature_extractor(
            clips, sampling_rate=self.sample_rate, truncation=self._truncation,
            return_tensors="pt")
        outputs = self.model.audio_model(input_features=features["input_features"].to(self.device),
                                         is_longer=features.get("is_longer"))
        return self.model.audio_projection(outputs.pooler_output)

    def project_text(self, texts: list[str]) -> torch.Tensor:
        """Raw projected embeddings of texts, each cut at ``max_text_tokens``."""
        tokens = self.processor.tokenizer(texts, padding=True, truncation=True,
                                          max_length=self.max_text_tokens, return_tensors="pt")
        outputs = self.model.text_model(input_ids=tokens["input_ids"].to(self.device),
                                        attention_mask=tokens["attention_mask"].to(self.device))
        return self.model.text_projection(outputs.pooler_output)


def clap_clips(signal: np.ndarray, sample_rate: int, window_seconds: float = 10.0,
               min_tail_seconds: float = 1.0) -> list[np.ndarray]:
    """Consecutive windows of a signal; a tail of at least ``min_tail_seconds`` (or the
    whole signal, when shorter than one window) is one more, repeat-padded later by the
    feature extractor."""
    size = int(window_seconds * sample_rate)
    clips = list(windows(signal, size))
    tail = signal[len(clips) * size:]
    if not clips or tail.size >= min_tail_seconds * sample_rate:
        clips.append(tail)
    return clips
