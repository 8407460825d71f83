"""Training the fusion model on (query, track) pairs with an in-batch contrastive loss.

``train_fusion`` is the loop on ready vectors; ``FusionTrainer`` builds those vectors
from a NewWave library (its catalog's stored track vectors and the active models'
query encoders) and adds validation, logging, checkpoints and resume. Its best model
is what ``fusion_model = "<output>/fusion.pt"`` loads for ``--mode combined``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from newwave.config import Settings
from newwave.eval.metrics import evaluate
from newwave.models.fusion import FusionConfig, FusionModel
from newwave.models.registry import ActiveModels
from newwave.service import NewWave
from newwave.train.common import Checkpoints, RunLog, TrainingDataError, seed_everything


@dataclass(frozen=True)
class FusionExamples:
    """Row i: a query (both views) and a track it should find (both signals)."""

    query_audio: np.ndarray  # [n, audio_dim]
    query_text: np.ndarray  # [n, text_dim]
    track_audio: np.ndarray  # [n, audio_dim]
    track_lyrics: np.ndarray  # [n, text_dim]
    has_lyrics: np.ndarray  # [n] 0/1

    def subset(self, rows: np.ndarray) -> FusionExamples:
        return FusionExamples(*(a[rows] for a in (self.query_audio, self.query_text,
                                                   self.track_audio, self.track_lyrics,
                                                   self.has_lyrics)))


EpochCallback = Callable[[int, FusionModel, torch.optim.Optimizer, float], None]


def train_fusion(examples: FusionExamples, config: FusionConfig, *, epochs: int = 50,
                 batch_size: int = 64, lr: float = 1e-3, temperature: float = 0.05,
                 seed: int = 0, start_epoch: int = 0, state: dict | None = None,
                 on_epoch: EpochCallback | None = None) -> tuple[FusionModel, list[float]]:
    """Fit both towers with InfoNCE in both directions; return the model and the mean
    loss of each epoch. ``state`` (model and optimizer state dicts) resumes a run."""
    torch.manual_seed(seed)
    model = FusionModel(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    tensors = [torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in
               (examples.query_audio, examples.query_text, examples.track_audio,
                examples.track_lyrics, examples.has_lyrics)]
    losses = []
    for epoch in range(start_epoch, epochs):
        model.train()
        order = np.random.default_rng([seed, epoch]).permutation(len(tensors[0]))
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
        model.eval()
        if on_epoch is not None:
            on_epoch(epoch + 1, model, optimizer, losses[-1])
    return model.eval(), losses


@dataclass(frozen=True)
class FusionTrainConfig:
    data: Path  # JSONL: {"query": ..., "track_id": N} or {"query": ..., "path": "..."}
    data_dir: Path  # the NewWave library (catalog with vectors) the tracks live in
    output_dir: Path = Path("runs/fusion")
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    temperature: float = 0.05
    hidden: int = 256
    out: int = 128
    validation_fraction: float = 0.1
    seed: int = 0


class FusionTrainer:
    def __init__(self, config: FusionTrainConfig, models: ActiveModels | None = None) -> None:
        self.config = config
        seed_everything(config.seed)
        settings = Settings.load(data_dir=config.data_dir)
        if not settings.catalog_path.exists():
            raise TrainingDataError(f"{settings.catalog_path}: no NewWave catalog; index the "
                                    "library first (`newwave --data-dir ... index FOLDER`)")
        self.library = NewWave.open(settings, models=models)
        self.catalog, self.models = self.library.catalog, self.library.models
        queries, track_ids = self._read_pairs()
        self.examples = self._examples(queries, track_ids)
        self.track_ids = track_ids
        order = np.random.default_rng(config.seed).permutation(len(track_ids))
        cut = max(1, int(len(order) * config.validation_fraction))
        self.val_rows, self.train_rows = order[:cut], order[cut:]
        self.fusion_config = FusionConfig(
            audio_dim=self.examples.track_audio.shape[1], text_dim=self.examples.query_text.shape[1],
            audio_space=str(self.models.audio_model.spaces["audio-text"]),
            text_space=str(self.models.text_encoder.info), hidden=config.hidden, out=config.out)
        self.log = RunLog(config.output_dir)
        self.checkpoints = Checkpoints(config.output_dir)

    def _read_pairs(self) -> tuple[list[str], list[int]]:
        if not self.config.data.is_file():
            raise TrainingDataError(f"{self.config.data}: training pairs not found; give a JSONL "
                                    'file of {"query": ..., "track_id": N} rows')
        queries, track_ids = [], []
        by_path = {t.path: t.id for t in self.catalog.tracks()}
        for number, line in enumerate(self.config.data.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                track_id = row.get("track_id")
                if track_id is None:
                    track_id = by_path.get(str(Path(row["path"]).resolve()))
                if track_id is None or self.catalog.track(int(track_id)) is None:
                    raise KeyError(f"track {row.get('track_id') or row.get('path')} is not in the catalog")
                queries.append(str(row["query"]))
                track_ids.append(int(track_id))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise TrainingDataError(f"{self.config.data}:{number}: {exc}") from exc
        if len(queries) < 4:
            raise TrainingDataError(f"{self.config.data}: needs at least 4 pairs")
        return queries, track_ids

    def _examples(self, queries: list[str], track_ids: list[int]) -> FusionExamples:
        text = self.models.text_encoder.encode(queries)
        audio_queries = self.library.queries.sound_model.embed_text(queries)
        audio = self.library.indexes.track_vectors("audio-text", track_ids)
        lyrics = self.library.indexes.track_vectors("lyrics", track_ids)
        missing = [t for t in track_ids if t not in audio]
        if missing:
            raise TrainingDataError(f"tracks {missing[:5]} have no audio vectors; run "
                                    "`newwave index` on the library first")
        text_dim = self.models.text_encoder.info.dim
        return FusionExamples(
            np.stack([q.vector for q in audio_queries]), text,
            np.stack([audio[t] for t in track_ids]),
            np.stack([lyrics.get(t, np.zeros(text_dim, np.float32)) for t in track_ids]),
            np.array([t in lyrics for t in track_ids], dtype=np.float32))

    def validate(self, model: FusionModel) -> dict[str, float]:
        """Each held-out query ranks every distinct training track; MRR and HitRate."""
        unique = sorted(set(self.track_ids))
        rows = [self.track_ids.index(t) for t in unique]
        pool = self.examples.subset(np.array(rows))
        rankings = []
        for row in self.val_rows:
            scores = model.score(self.examples.query_audio[row], self.examples.query_text[row],
                                 pool.track_audio, pool.track_lyrics, pool.has_lyrics)
            rankings.append([unique[i] for i in np.argsort(-scores)])
        metrics, _ = evaluate(rankings, [{self.track_ids[r]} for r in self.val_rows])
        return {name: metrics[name].mean for name in ("MRR", "HitRate@1", "HitRate@10")}

    def train(self) -> Path:
        """Train (resuming from the last checkpoint); return the best model's path."""
        state = self.checkpoints.load()
        best = state["best"] if state else -1.0
        best_path = self.config.output_dir / "fusion.pt"

        def on_epoch(epoch: int, model: FusionModel, optimizer: torch.optim.Optimizer,
                     loss: float) -> None:
            nonlocal best
            metrics = self.validate(model)
            self.log.write(kind="train", step=epoch, epoch=epoch, loss=loss)
            self.log.write(kind="validation", step=epoch, epoch=epoch, **metrics)
            if metrics["MRR"] > best:
                best = metrics["MRR"]
                model.save(best_path)
            self.checkpoints.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "epoch": epoch, "best": best})
            self.log.plot()

        train_fusion(self.examples.subset(self.train_rows), self.fusion_config,
                     epochs=self.config.epochs, batch_size=self.config.batch_size,
                     lr=self.config.lr, temperature=self.config.temperature,
                     seed=self.config.seed, start_epoch=state["epoch"] if state else 0,
                     state=state, on_epoch=on_epoch)
        return best_path
