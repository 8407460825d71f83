"""Fine-tuning the lyrics/description encoder (any sentence-transformers model).

Data: JSONL rows ``{"description": ..., "lyrics": ..., "artist": ..., "tags": [...]}``
(artist and tags optional). Loss: multiple-negatives ranking (in-batch negatives,
scale 20) plus one mined hard negative per pair — another song by the same artist, or
else one sharing a tag. Long lyrics are windowed as at inference and their windows
mean-pooled, so training sees what search sees. Each epoch ends with a validation
(MRR, HitRate@1/@10 of description -> lyrics over the validation set); the best model is
saved as a sentence-transformers folder that ``--text-model <output>/best`` loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from newwave.config import DEFAULT_TEXT_MODEL
from newwave.eval.metrics import evaluate
from newwave.models.text import SentenceTransformerEncoder
from newwave.train.common import Checkpoints, RunLog, TrainingDataError, seed_everything


@dataclass(frozen=True)
class LyricsTrainConfig:
    data: Path
    output_dir: Path = Path("runs/lyrics")
    validation: Path | None = None  # default: hold out validation_fraction of data
    validation_fraction: float = 0.1
    model: str = DEFAULT_TEXT_MODEL
    epochs: int = 1
    batch_size: int = 16
    lr: float = 2e-5
    scale: float = 20.0
    hard_negatives: bool = True
    seed: int = 0
    log_every: int = 10


@dataclass(frozen=True)
class LyricsPair:
    description: str
    lyrics: str
    artist: str | None
    tags: frozenset[str]


def read_pairs(path: Path) -> list[LyricsPair]:
    if not path.is_file():
        raise TrainingDataError(f"{path}: training data not found; give a JSONL file of "
                                '{"description": ..., "lyrics": ...} rows')
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pairs.append(LyricsPair(str(row["description"]), str(row["lyrics"]),
                                    row.get("artist"), frozenset(row.get("tags") or [])))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise TrainingDataError(f"{path}:{number}: expected description and lyrics "
                                    f"({exc})") from exc
    if len(pairs) < 2:
        raise TrainingDataError(f"{path}: needs at least 2 pairs, found {len(pairs)}")
    return pairs


def mine_hard_negative(pairs: list[LyricsPair], index: int, rng: np.random.Generator) -> int | None:
    """Another pair by the same artist, else one sharing a tag, else None."""
    me = pairs[index]
    same_artist = [j for j, p in enumerate(pairs) if j != index and me.artist
                   and p.artist == me.artist and p.lyrics != me.lyrics]
    shared_tag = [j for j, p in enumerate(pairs) if j != index and me.tags & p.tags
                  and p.lyrics != me.lyrics]
    pool = same_artist or shared_tag
    return int(rng.choice(pool)) if pool else None


class LyricsTrainer:
    def __init__(self, config: LyricsTrainConfig) -> None:
        self.config = config
        seed_everything(config.seed)
        self.rng = np.random.default_rng(config.seed)
        pairs = read_pairs(config.data)
        if config.validation is not None:
            self.train_pairs, self.val_pairs = pairs, read_pairs(config.validation)
        else:
            order = self.rng.permutation(len(pairs))
            cut = max(1, int(len(pairs) * config.validation_fraction))
            self.val_pairs = [pairs[i] for i in order[:cut]]
            self.train_pairs = [pairs[i] for i in order[cut:]]
        self.encoder = SentenceTransformerEncoder(config.model)
        self.model = self.encoder.model
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr)
        self.log = RunLog(config.output_dir)
        self.checkpoints = Checkpoints(config.output_dir)
        self.step, self.epoch, self.best = 0, 0, -1.0

    def embed(self, texts: list[str]) -> torch.Tensor:
        """Differentiable: each text's windows encoded, mean-pooled, normalised."""
        windows = [self.encoder.chunks(t) for t in texts]
        features = self.model.tokenize([w for ws in windows for w in ws])
        features = {k: v.to(self.model.device) if isinstance(v, torch.Tensor) else v
                    for k, v in features.items()}
        flat = self.model(features)["sentence_embedding"]
        pooled, start = [], 0
        for ws in windows:
            pooled.append(flat[start:start + len(ws)].mean(dim=0))
            start += len(ws)
        return F.normalize(torch.stack(pooled), dim=1)

    def train(self) -> float:
        """Run (or resume) the configured epochs; return the best validation MRR."""
        if (state := self.checkpoints.load()) is not None:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.step, self.epoch, self.best = state["step"], state["epoch"], state["best"]
        while self.epoch < self.config.epochs:
            self._train_epoch()
            self.epoch += 1
            metrics = self.validate()
            self.log.write(kind="validation", epoch=self.epoch, step=self.step, **metrics)
            if metrics["MRR"] > self.best:
                self.best = metrics["MRR"]
                self.model.save(str(self.config.output_dir / "best"))
            self.checkpoints.save({"model": self.model.state_dict(),
                                   "optimizer": self.optimizer.state_dict(), "step": self.step,
                                   "epoch": self.epoch, "best": self.best})
            self.log.plot()
        return self.best

    def _train_epoch(self) -> None:
        self.model.train()
        order = self.rng.permutation(len(self.train_pairs))
        for start in range(0, len(order), self.config.batch_size):
            batch = [int(i) for i in order[start:start + self.config.batch_size]]
            if len(batch) < 2:
                continue
            candidates = [self.train_pairs[i].lyrics for i in batch]
            if self.config.hard_negatives:
                for i in batch:
                    j = mine_hard_negative(self.train_pairs, i, self.rng)
                    if j is not None:
                        candidates.append(self.train_pairs[j].lyrics)
            queries = self.embed([self.train_pairs[i].description for i in batch])
            scores = self.config.scale * queries @ self.embed(candidates).T
            loss = F.cross_entropy(scores, torch.arange(len(batch)))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.step += 1
            if self.step % self.config.log_every == 0 or self.step == 1:
                self.log.write(kind="train", step=self.step, epoch=self.epoch,
                               loss=float(loss.detach()))

    @torch.inference_mode()
    def validate(self) -> dict[str, float]:
        self.model.eval()
        descriptions = self.encoder.encode([p.description for p in self.val_pairs])
        lyrics = self.encoder.encode([p.lyrics for p in self.val_pairs])
        rankings = [np.argsort(-(lyrics @ d)).tolist() for d in descriptions]
        metrics, _ = evaluate(rankings, [{i} for i in range(len(self.val_pairs))])
        return {name: metrics[name].mean for name in ("MRR", "HitRate@1", "HitRate@10")}
