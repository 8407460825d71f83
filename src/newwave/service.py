"""The application service: the one door through which every front end uses NewWave.

``NewWave.open(settings)`` owns the catalog, the models, the index set and the search
engine, and wires the pipeline in one place: ``update`` scans folders, embeds what is
new and syncs the indexes; ``search``, ``similar`` and ``by_audio`` answer queries. The
CLI, the API (and its background jobs), ``newwave demo``, the evaluation runner and the
trainers all go through it.

Opening is light: models load on first use, and torch, FAISS and transformers are only
imported by the code paths that need them, so ``newwave library stats`` starts fast.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from newwave.catalog import Catalog, TrackFilter, VectorKind
from newwave.config import Settings
from newwave.errors import InvalidInput, NotFound
from newwave.library import Scanner, ScanProgress, ScanReport
from newwave.models.registry import ActiveModels

if TYPE_CHECKING:
    from newwave.audio.workers import AudioWorkers
    from newwave.index import IndexSet
    from newwave.indexer import EmbedProgress, EmbedReport
    from newwave.models.query import QueryEncoder
    from newwave.search import Mode, SearchEngine, SearchResult

MIN_RECORDING_SECONDS = 1.0


class UpdateProgress:
    """What a long update tells its caller; override the hooks you show."""

    def scanning(self, root: Path) -> None:
        """A folder's scan starts."""

    def scanned(self, update: ScanProgress) -> None:
        """One more file of the folder was looked at."""

    def scan_done(self, report: ScanReport) -> None:
        """A folder's scan finished."""

    def embedding(self, update: EmbedProgress) -> None:
        """One more track was embedded (audio or lyrics stage)."""

    def syncing(self) -> None:
        """The search indexes are being brought in line with the catalog."""


@dataclass
class UpdateReport:
    scans: list[ScanReport] = field(default_factory=list)
    embedded: EmbedReport | None = None  # None: the update only scanned
    index_sizes: dict[VectorKind, int] = field(default_factory=dict)


class NewWave:
    """A music library: its catalog, models, indexes and search engine."""

    def __init__(self, settings: Settings, catalog: Catalog, models: ActiveModels) -> None:
        self.settings = settings
        self.catalog = catalog
        self.models = models
        self._update_lock = threading.Lock()  # one update at a time per instance

    @classmethod
    def open(cls, settings: Settings, *, models: ActiveModels | None = None) -> NewWave:
        """Open (creating if needed) the library that ``settings`` point at."""
        return cls(settings, Catalog(settings.catalog_path), models or ActiveModels(settings))

    def close(self) -> None:
        if "workers" in self.__dict__:
            self.workers.close()
        self.catalog.close()

    def __enter__(self) -> NewWave:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- parts, built on first use ---------------------------------------------------------

    @cached_property
    def indexes(self) -> IndexSet:
        from newwave.index import IndexSet

        return IndexSet(self.catalog, self.settings.index_dir, self.models.space_info)

    @cached_property
    def workers(self) -> AudioWorkers:
        """Worker processes that decode and embed untrusted audio (library files, uploads):
        a file that crashes the decoder costs a worker, not the server or the index run.
        ``max_pending``: uploads beyond it wait nowhere; they get a 503 with Retry-After."""
        from newwave.audio.workers import AudioWorkers

        return AudioWorkers(self.settings.audio_model, workers=1, max_pending=8)

    @cached_property
    def queries(self) -> QueryEncoder:
        from newwave.models.query import QueryEncoder

        return QueryEncoder(self.models)

    @cached_property
    def engine(self) -> SearchEngine:
        from newwave.search import SearchEngine

        return SearchEngine(self.catalog, self.indexes, self.queries,
                            fusion=lambda: self.models.fusion)

    def warm_up(self) -> None:
        """Load every model and index now (a server does this before listening, so a
        bad model path fails at start and the first search is as fast as the rest)."""
        self.models.fusion  # noqa: B018 (loads and checks the fusion model, if any)
        self.queries.encode("warm up")
        self.indexes.sync()

    # -- updating the library -------------------------------------------------------------

    def update(self, roots: Iterable[Path], *, verify: bool = False, embed: bool = True,
               progress: UpdateProgress | None = None) -> UpdateReport:
        """Scan each folder into the catalog, embed new and changed tracks, and sync the
        search indexes. Incremental and resumable: run it again after an interruption."""
        from newwave.indexer import Embedder

        progress = progress or UpdateProgress()
        report = UpdateReport()
        with self._update_lock:
            # A run killed earlier (SIGKILL, power loss) left its jobs "running".
            self.catalog.interrupt_orphaned_jobs()
            for root in roots:
                progress.scanning(Path(root))
                scanner = Scanner(self.catalog, verify=verify, on_progress=progress.scanned)
                report.scans.append(scanner.scan(Path(root)))
                progress.scan_done(report.scans[-1])
            if embed:
                report.embedded = Embedder(self.catalog, self.models, workers=self.workers,
                                           on_progress=progress.embedding).run()
                progress.syncing()
                self.indexes.sync()
                report.index_sizes = self.indexes.sizes()
        return report

    # -- searching ------------------------------------------------------------------------

    def search(self, query: str, mode: Mode = "combined", *, limit: int = 10, offset: int = 0,
               filters: TrackFilter | None = None) -> SearchResult:
        return self.engine.search(query, mode, limit=limit, offset=offset, filters=filters)

    def similar(self, track_id: int, *, limit: int = 10, offset: int = 0,
                filters: TrackFilter | None = None) -> SearchResult:
        return self.engine.similar(track_id, limit=limit, offset=offset, filters=filters)

    def by_audio(self, source: Path | bytes, *, max_seconds: float | None = None,
                 limit: int = 10, offset: int = 0,
                 filters: TrackFilter | None = None) -> SearchResult:
        """Tracks that sound like a recording (a file, or an upload's bytes), decoded and
        embedded in a worker process. ``max_seconds``: a longer recording is refused
        (nothing past it is decoded)."""
        embedded = self.workers.embed(source, max_seconds=None if max_seconds is None
                                      else max_seconds + 1)
        seconds = embedded.seconds
        if max_seconds is not None and seconds > max_seconds:
            raise InvalidInput(f"the recording is longer than {max_seconds:.0f} s; send a "
                               "shorter snippet")
        if seconds < MIN_RECORDING_SECONDS:
            raise InvalidInput(f"the recording is {seconds:.1f} s long; record at least 3 s")
        return self.engine.by_audio(embedded.vectors["audio"], seconds, limit=limit,
                                    offset=offset, filters=filters)

    def find_track(self, text: str) -> int:
        """A track id from an id or words of its title (exactly one match)."""
        if text.isdigit():
            return int(text)
        matches = self.catalog.find_tracks(text)
        if not matches:
            raise NotFound(f"no track title contains {text!r}; see `newwave library list`")
        if len(matches) > 1:
            names = "; ".join(f"{t.id}: {t.title} ({t.artist or '?'})" for t in matches[:5])
            raise InvalidInput(f"{len(matches)} tracks match {text!r} ({names}); give the id")
        return matches[0].id
