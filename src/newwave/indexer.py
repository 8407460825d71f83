"""Embedding the catalog: every present track gets vectors from the active models, and
musical descriptors (tempo, key, loudness: :mod:`newwave.audio.descriptors`).

Audio goes through the audio model and the descriptor analyser on one decode (which serves
all of the model's spaces), in supervised worker processes when given an
:class:`AudioWorkers` pool (a file that crashes its decoder is recorded and skipped, the run
goes on); a track that already has its vectors but no descriptors (indexed before they
existed, or before the analyser changed) is decoded for the analyser alone. Lyrics go
through the text encoder, one vector per window of long lyrics. Each track commits on its
own, so an interrupted run resumes where it stopped; a track whose audio cannot be decoded
is recorded and not retried until its file changes, and a failed descriptor analysis is
recorded without costing the track its vectors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from newwave.audio import AudioDecodeError, decode
from newwave.audio.descriptors import (Analyser, AnalyserName, Analysis, analyser_version,
                                       default_analyser_name, load_analyser, measure)
from newwave.audio.workers import AudioWorkers, EmbeddedAudio
from newwave.catalog import Catalog, JobProgress, Track, VectorSpace
from newwave.catalog.catalog import text_hash
from newwave.catalog.models import TrackDescriptors
from newwave.models.base import ModelInfo, VectorKind
from newwave.models.registry import ActiveModels

Stage = Literal["audio", "lyrics"]


@dataclass
class EmbedReport:
    audio_embedded: int = 0
    audio_failed: int = 0
    lyrics_embedded: int = 0
    descriptors_measured: int = 0
    descriptors_failed: int = 0  # recorded (`newwave library errors`); vectors kept
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
                 on_progress: ProgressCallback | None = None, lyrics_batch: int = 16,
                 analyser: AnalyserName | None = None) -> None:
        self.catalog = catalog
        self.models = models
        self.workers = workers  # None: decode and embed in this process (trusted files)
        self.on_progress = on_progress
        self.lyrics_batch = lyrics_batch
        self.analyser = analyser or default_analyser_name()
        self._local_analyser: Analyser | None = None  # without workers, loaded on first use

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
            f"{report.audio_failed} failed; descriptors of {report.descriptors_measured} "
            f"tracks, {report.descriptors_failed} failed"))
        return report

    def _embed_audio(self, report: EmbedReport, job: JobProgress) -> None:
        """Each track that lacks vectors or descriptors, decoded once for what it lacks."""
        model = self.models.audio_model
        spaces = {kind: self._space(kind, info) for kind, info in model.spaces.items()}
        unembedded: dict[int, Track] = {}
        for space in spaces.values():
            unembedded.update((t.id, t) for t in self.catalog.tracks_needing_audio_vectors(space))
        unanalysed = {t.id: t for t in self.catalog.tracks_needing_descriptors(self.analyser)}
        todo = {**unanalysed, **unembedded}
        for done, track_id in enumerate(sorted(todo), start=1):
            track = todo[track_id]
            self._audio_of(track, spaces if track_id in unembedded else {},
                           track_id in unanalysed, report)
            self._progress(job, "audio", done, len(todo), track)

    def _audio_of(self, track: Track, spaces: dict[VectorKind, VectorSpace], analyse: bool,
                  report: EmbedReport) -> None:
        """Embed the track into ``spaces`` (none: it has its vectors) and, with ``analyse``,
        measure its descriptors; record what fails."""
        path = Path(track.path)
        try:
            if spaces:
                embedded = self._embed_file(path, analyse)
                analysis = embedded.analysis
            else:
                analysis = self._analyse_file(path)
        except (AudioDecodeError, OSError, ValueError) as exc:
            for space in spaces.values():
                self.catalog.record_embed_failure(space, track.id, track.content_hash, str(exc))
            if spaces:
                report.audio_failed += 1
            if analyse:
                self._store_analysis(track, Analysis(None, str(exc)), report)
            return
        if spaces:
            for kind, space in spaces.items():
                self.catalog.put_vectors(space, track.id, track.content_hash,
                                         embedded.vectors[kind])
            report.audio_embedded += 1
            report.audio_seconds += embedded.seconds
        if analysis is not None:
            self._store_analysis(track, analysis, report)

    def _store_analysis(self, track: Track, analysis: Analysis, report: EmbedReport) -> None:
        if analysis.descriptors is None:
            self.catalog.record_descriptor_failure(
                track.id, track.content_hash, self.analyser, analyser_version(self.analyser),
                analysis.error or "unknown error")
            report.descriptors_failed += 1
            return
        self.catalog.put_descriptors(
            TrackDescriptors(track_id=track.id, **asdict(analysis.descriptors)),
            track.content_hash)
        report.descriptors_measured += 1

    def _embed_file(self, path: Path, analyse: bool) -> EmbeddedAudio:
        if self.workers is not None:
            return self.workers.embed(path, analyser=self.analyser if analyse else None)
        model = self.models.audio_model
        waveform = decode(path, model.sample_rate)
        return EmbeddedAudio(model.embed_audio(waveform, model.sample_rate),
                             waveform.size / model.sample_rate,
                             self._measure(waveform, model.sample_rate) if analyse else None)

    def _analyse_file(self, path: Path) -> Analysis:
        # The model's rate, as when descriptors come with the embedding: same values.
        rate = self.models.audio_model.sample_rate
        if self.workers is not None:
            return self.workers.analyse(path, rate, self.analyser)
        return self._measure(decode(path, rate), rate)

    def _measure(self, waveform: np.ndarray, sample_rate: int) -> Analysis:
        if self._local_analyser is None:
            self._local_analyser = load_analyser(self.analyser)
        return measure(self._local_analyser, waveform, sample_rate)

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
