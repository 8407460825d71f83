"""Contrastive fine-tuning of a transformers ``ClapModel`` beyond its 10 s / 77-token
limits, with the seeds' duration curriculum.

At step s the audio seen per example grows linearly from ``min_seconds`` (10 s) to
``max_seconds`` (e.g. 240 s) over ``curriculum_steps``; long audio is fed as
consecutive 10 s windows through the pretrained audio encoder and their projected
embeddings are mean-pooled (as at inference), so the encoder keeps seeing inputs of the
length it was trained on. Text beyond ``max_text_tokens`` is cut into windows that are
encoded separately and mean-pooled. Loss: CLAP's symmetric InfoNCE with its learned
temperatures. On a GPU: mixed precision (bf16 autocast) and gradient accumulation.
Checkpoints every ``checkpoint_every`` steps; a run resumes from the last one; the
final model is saved with its processor, loadable as ``audio_model = "clap:<output>/final"``.

Data: JSONL rows ``{"audio": "relative/or/absolute/path", "text": "..."}`` (paths
relative to ``audio_root``), or a folder of parquet shards with ``audio`` (bytes or
path) and ``text`` columns, streamed shard by shard.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from newwave.audio import AudioDecodeError, decode
from newwave.models.clap import DEFAULT_CLAP_MODEL, ClapAudioTextModel, clap_clips
from newwave.train.common import Checkpoints, RunLog, TrainingDataError, seed_everything
from newwave.train.parquet_stream import ParquetStream, row_audio

WINDOW_SECONDS = 10.0
SAMPLE_RATE = 48000


@dataclass(frozen=True)
class ClapTrainConfig:
    data: Path
    audio_root: Path | None = None
    model: str = DEFAULT_CLAP_MODEL
    output_dir: Path = Path("runs/clap")
    steps: int = 1000
    batch_size: int = 8
    grad_accumulation: int = 1
    lr: float = 1e-5
    min_seconds: float = 10.0
    max_seconds: float = 240.0
    curriculum_steps: int | None = None  # default: all steps
    max_text_tokens: int = 77
    mixed_precision: bool = True  # used on CUDA only
    checkpoint_every: int = 100
    log_every: int = 10
    seed: int = 0
    device: str = "auto"


def curriculum_seconds(config: ClapTrainConfig, step: int) -> float:
    """Audio length at ``step``: linear from min_seconds to max_seconds."""
    span = config.curriculum_steps or config.steps
    progress = min(1.0, step / max(span, 1))
    return config.min_seconds + (config.max_seconds - config.min_seconds) * progress


class ClapTrainer:
    def __init__(self, config: ClapTrainConfig) -> None:
        self.config = config
        seed_everything(config.seed)
        if not config.data.exists():
            raise TrainingDataError(f"{config.data}: training data not found; give a JSONL file "
                                    'of {"audio": ..., "text": ...} rows or a parquet folder')
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") \
            if config.device == "auto" else config.device
        # The inference model's own projections and windowing, so training and search agree.
        self.clap = ClapAudioTextModel(config.model, max_text_tokens=config.max_text_tokens,
                                       device=self.device)
        self.model, self.processor = self.clap.model, self.clap.processor
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr)
        self.log = RunLog(config.output_dir)
        self.checkpoints = Checkpoints(config.output_dir)
        self.step = 0
        self.stream_state: dict | None = None

    # -- data ---------------------------------------------------------------------------

    def _examples(self) -> Iterator[tuple[np.ndarray | None, str]]:
        """(waveform at 48 kHz or None when unreadable, text), endlessly, in a seeded order."""
        if self.config.data.is_dir():
            stream = ParquetStream([self.config.data], buffer_size=256, seed=self.config.seed)
            if self.stream_state:
                stream.load_state_dict(self.stream_state)
            while True:
                for row in stream:
                    self.stream_state = stream.state_dict()
                    try:
                        audio = row_audio(row, SAMPLE_RATE, root=self.config.audio_root,
                                          max_seconds=self._seconds())
                    except (AudioDecodeError, TrainingDataError, OSError):
                        audio = None
                    yield audio, str(row.get("text", ""))
                stream.load_state_dict({"shard": 0, "rows": 0})
        rows = [json.loads(line) for line in self.config.data.read_text().splitlines() if line]
        if not rows:
            raise TrainingDataError(f"{self.config.data}: no rows")
        order = random.Random(self.config.seed)
        while True:
            order.shuffle(rows)
            for row in rows:
                path = Path(row["audio"])
                path = path if path.is_absolute() else (self.config.audio_root or Path(".")) / path
                try:
                    audio = decode(path, SAMPLE_RATE, max_seconds=self._seconds())
                except AudioDecodeError:
                    audio = None
                yield audio, str(row["text"])

    def _seconds(self) -> float:
        """Decode no more audio than the curriculum uses at the current step."""
        return curriculum_seconds(self.config, self.step)

    # -- model --------------------------------------------------------------------------

    def embed_audio(self, waveforms: list[np.ndarray], seconds: float) -> torch.Tensor:
        """Each waveform cut to ``seconds``, windowed at 10 s, window projections pooled."""
        clips, owners = [], []
        for n, wave in enumerate(waveforms):
            parts = clap_clips(wave[: int(seconds * SAMPLE_RATE)], SAMPLE_RATE, WINDOW_SECONDS)
            clips += parts
            owners += [n] * len(parts)
        return _pool(self.clap.project_audio(clips), owners, len(waveforms))

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """Texts longer than the token limit: windows encoded separately, mean-pooled."""
        tokenizer = self.processor.tokenizer
        room = self.config.max_text_tokens - 2
        pieces, owners = [], []
        for n, text in enumerate(texts):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"] or [tokenizer.unk_token_id]
            for start in range(0, len(ids), room):
                pieces.append(tokenizer.decode(ids[start:start + room]))
                owners.append(n)
        return _pool(self.clap.project_text(pieces), owners, len(texts))

    def loss(self, waveforms: list[np.ndarray], texts: list[str], seconds: float) -> torch.Tensor:
        audio, text = self.embed_audio(waveforms, seconds), self.embed_text(texts)
        logits_text = text @ audio.T * self.model.logit_scale_t.exp()
        logits_audio = audio @ text.T * self.model.logit_scale_a.exp()
        target = torch.arange(len(texts), device=audio.device)
        return (F.cross_entropy(logits_text, target) + F.cross_entropy(logits_audio, target)) / 2

    # -- loop ---------------------------------------------------------------------------

    def train(self) -> Path:
        if (state := self.checkpoints.load()) is not None:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.step, self.stream_state = state["step"], state.get("stream")
        examples = self._examples()
        autocast = self.device == "cuda" and self.config.mixed_precision
        while self.step < self.config.steps:
            self.model.train()
            seconds = curriculum_seconds(self.config, self.step)
            self.optimizer.zero_grad()
            total = 0.0
            for _ in range(self.config.grad_accumulation):
                batch = [next(examples) for _ in range(self.config.batch_size)]
                batch = [(a, t) for a, t in batch if a is not None and a.size]
                if len(batch) < 2:
                    continue
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                    loss = self.loss([a for a, _ in batch], [t for _, t in batch], seconds)
                (loss / self.config.grad_accumulation).backward()
                total += float(loss.detach()) / self.config.grad_accumulation
            self.optimizer.step()
            self.step += 1
            if self.step % self.config.log_every == 0 or self.step == 1:
                self.log.write(kind="train", step=self.step, loss=total, seconds=seconds)
            if self.step % self.config.checkpoint_every == 0 or self.step == self.config.steps:
                self.checkpoints.save({"model": self.model.state_dict(),
                                       "optimizer": self.optimizer.state_dict(),
                                       "step": self.step, "stream": self.stream_state})
                self.log.plot()
        final = self.config.output_dir / "final"
        self.model.save_pretrained(final)
        self.processor.save_pretrained(final)
        return final


def _pool(projected: torch.Tensor, owners: list[int], count: int) -> torch.Tensor:
    """Mean of each owner's rows, L2-normalised: ``[count, dim]``."""
    owner = torch.tensor(owners, device=projected.device)
    return F.normalize(torch.stack([projected[owner == n].mean(dim=0) for n in range(count)]),
                       dim=-1)
