"""Embedding the catalog: every present track gets vectors from the active models.

Audio goes through the audio model (one decode serves all of its spaces), in supervised
worker processes when given an :class:`AudioWorkers` pool (a file that crashes its
decoder is recorded and skipped, the run goes on); lyrics go through the text encoder, one vector per window of long lyrics. Each track commits on
its own, so an interrupted run resumes where it stopped; a track whose audio cannot be
decoded is recorded and not retried until its file changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from newwave.audio import AudioDecodeError, decode
from newwave.audio.workers import AudioWorkers, EmbeddedAudio
from newwave.catalog import Catalog, JobProgress, Track, VectorSpace
from newwave.catalog.catalog import text_hash
from newwave.models.base import ModelInfo, VectorKind
from newwave.models.registry import ActiveModels

Stage = Literal["audio", "lyrics"]


@dataclass
class EmbedReport:
    audio_embedded: int = 0
    audio_failed: int = 0
    lyrics_embedded: int = 0
    audio_seconds: float = 0.0
    elapsed: float = 0.0


@dataclass(frozen=True)
class EmbedProgress:
    stage: Stage
    done: int
    total: int
    track: Track


ProgressCallback = Callable[[EmbedProgress], None]


class Embedder:
    def __init__(self, catalog: Catalog, models: ActiveModels, *,
                 workers: AudioWorkers | None = None,
                 on_progress: ProgressCallback | None = None, lyrics_batch: int = 16) -> None:
        self.catalog = catalog
        self.models = models
        self.workers = workers  # None: decode and embed in this process (trusted files)
        self.on_progress = on_progress
        self.lyrics_batch = lyrics_batch

    def run(self) -> EmbedReport:
        report = EmbedReport()
        started = time.monotonic()
        job_id = self.catalog.start_job("embed", {"audio_model": self.models.settings.audio_model,
                                                  "text_model": self.models.settings.text_model})
        job = JobProgress(self.catalog, job_id)
        try:
            self._embed_audio(report, job)
            self._embed_lyrics(report, job)
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            self.catalog.finish_job(job_id, status, error=None if status == "interrupted"
                                    else repr(exc))
            raise
        report.elapsed = time.monotonic() - started
        self.catalog.finish_job(job_id, "done", message=(
            f"{report.audio_embedded} audio, {report.lyrics_embedded} lyrics embedded, "
            f"{report.audio_failed} failed"))
        return report

    def _embed_audio(self, report: EmbedReport, job: JobProgress) -> None:
        model = self.models.audio_model
        spaces = {kind: self._space(kind, info) for kind, info in model.spaces.items()}
        pending: dict[int, Track] = {}
        for space in spaces.values():
            pending.update((t.id, t) for t in self.catalog.tracks_needing_audio_vectors(space))
        todo = [pending[i] for i in sorted(pending)]
        for done, track in enumerate(todo, start=1):
            try:
                embedded = self._embed_file(Path(track.path))
            except (AudioDecodeError, OSError, ValueError) as exc:
                for space in spaces.values():
                    self.catalog.record_embed_failure(space, track.id, track.content_hash, str(exc))
                report.audio_failed += 1
            else:
                for kind, space in spaces.items():
                    self.catalog.put_vectors(space, track.id, track.content_hash,
                                             embedded.vectors[kind])
                report.audio_embedded += 1
                report.audio_seconds += embedded.seconds
            self._progress(job, "audio", done, len(todo), track)

    def _embed_file(self, path: Path) -> EmbeddedAudio:
        if self.workers is not None:
            return self.workers.embed(path)
        model = self.models.audio_model
        waveform = decode(path, model.sample_rate)
        return EmbeddedAudio(model.embed_audio(waveform, model.sample_rate),
                             waveform.size / model.sample_rate)

    def _embed_lyrics(self, report: EmbedReport, job: JobProgress) -> None:
        encoder = self.models.text_encoder
        space = self._space("lyrics", encoder.info)
        todo = self.catalog.tracks_needing_lyrics_vectors(space)
        for start in range(0, len(todo), self.lyrics_batch):
            batch, texts = [], []
            for track in todo[start:start + self.lyrics_batch]:
                if (lyrics := self.catalog.lyrics(track.id)) is not None:  # may vanish meanwhile
                    batch.append(track)
                    texts.append(lyrics.text)
            for offset, (track, text, vectors) in enumerate(
                    zip(batch, texts, encoder.encode_chunked(texts)), start=start + 1):
                self.catalog.put_vectors(space, track.id, text_hash(text), vectors)
                report.lyrics_embedded += 1
                self._progress(job, "lyrics", offset, len(todo), track)

    def _space(self, kind: VectorKind, info: ModelInfo) -> VectorSpace:
        return self.catalog.vector_space(kind, info.name, info.version, info.dim)

    def _progress(self, job: JobProgress, stage: Stage, done: int, total: int,
                  track: Track) -> None:
        job.update(done, total, f"{stage}: {track.path}")
        if self.on_progress is not None:
            self.on_progress(EmbedProgress(stage, done, total, track))
