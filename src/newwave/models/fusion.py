"""The fusion model: one joint space for queries and tracks, from both signals.

A track is its audio–text vector (what it sounds like) and its pooled lyrics vector
(what it is about, zeros plus a flag when it has no lyrics); a query is its vector in
the audio–text space and its text-encoder vector. Two small MLP towers map each side
into a shared unit sphere, trained contrastively (``newwave.train.fusion``), so the
score is a cosine, and tracks without lyrics still compete on sound.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FORMAT_VERSION = 1


@dataclass(frozen=True)
class FusionConfig:
    audio_dim: int  # the audio–text space (track side and query side)
    text_dim: int  # the text encoder's space (lyrics and query text)
    audio_space: str  # "model@version" of the spaces it was trained on
    text_space: str
    hidden: int = 256
    out: int = 128


def _tower(inputs: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.GELU(), nn.LayerNorm(hidden),
                         nn.Linear(hidden, out))


class FusionModel(nn.Module):
    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        self.track_tower = _tower(config.audio_dim + config.text_dim + 1, config.hidden, config.out)
        self.query_tower = _tower(config.audio_dim + config.text_dim, config.hidden, config.out)

    def embed_tracks(self, audio: torch.Tensor, lyrics: torch.Tensor,
                     has_lyrics: torch.Tensor) -> torch.Tensor:
        lyrics = lyrics * has_lyrics[:, None]
        return F.normalize(self.track_tower(torch.cat([audio, lyrics, has_lyrics[:, None]], 1)), dim=1)

    def embed_queries(self, audio: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.query_tower(torch.cat([audio, text], 1)), dim=1)

    @torch.inference_mode()
    def score(self, query_audio: np.ndarray, query_text: np.ndarray, track_audio: np.ndarray,
              track_lyrics: np.ndarray, has_lyrics: np.ndarray) -> np.ndarray:
        """Cosine of one query with each of ``n`` tracks -> ``[n]``."""
        query = self.embed_queries(torch.from_numpy(query_audio[None]).float(),
                                   torch.from_numpy(query_text[None]).float())
        tracks = self.embed_tracks(torch.from_numpy(track_audio).float(),
                                   torch.from_numpy(track_lyrics).float(),
                                   torch.from_numpy(has_lyrics).float())
        return (tracks @ query[0]).numpy()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": FORMAT_VERSION, "config": asdict(self.config),
                    "state_dict": self.state_dict()}, path)

    @classmethod
    def load(cls, path: Path) -> FusionModel:
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
            raise ValueError(f"{path}: not a NewWave fusion model ({exc}); train one with "
                             "`newwave train fusion` or unset fusion_model") from exc
        if not isinstance(saved, dict) or saved.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: not a NewWave fusion model of format {FORMAT_VERSION}; "
                             "retrain it with this NewWave")
        model = cls(FusionConfig(**saved["config"]))
        model.load_state_dict(saved["state_dict"])
        return model.eval()
