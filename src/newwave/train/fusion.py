"""Training the fusion model on (query, track) pairs with an in-batch contrastive loss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from newwave.models.fusion import FusionConfig, FusionModel


@dataclass(frozen=True)
class FusionExamples:
    """Row i: a query (both views) and a track it should find (both signals)."""

    query_audio: np.ndarray  # [n, audio_dim]
    query_text: np.ndarray  # [n, text_dim]
    track_audio: np.ndarray  # [n, audio_dim]
    track_lyrics: np.ndarray  # [n, text_dim]
    has_lyrics: np.ndarray  # [n] 0/1


def train_fusion(examples: FusionExamples, config: FusionConfig, *, epochs: int = 50,
                 batch_size: int = 64, lr: float = 1e-3, temperature: float = 0.05,
                 seed: int = 0) -> tuple[FusionModel, list[float]]:
    """Fit both towers with InfoNCE in both directions; return the model and the mean
    loss of each epoch."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = FusionModel(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    tensors = [torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in
               (examples.query_audio, examples.query_text, examples.track_audio,
                examples.track_lyrics, examples.has_lyrics)]
    losses = []
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(tensors[0]))
        epoch_losses = []
        for start in range(0, len(order), batch_size):
            batch = torch.from_numpy(order[start:start + batch_size])
            if len(batch) < 2:
                continue
            qa, qt, ta, tl, hl = (t[batch] for t in tensors)
            logits = model.embed_queries(qa, qt) @ model.embed_tracks(ta, tl, hl).T / temperature
            target = torch.arange(len(batch))
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            epoch_losses.append(float(loss.detach()))
        losses.append(float(np.mean(epoch_losses)))
    return model.eval(), losses
