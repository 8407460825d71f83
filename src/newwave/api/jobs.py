"""Background library jobs for the API: rescan every library folder, embed, re-index."""

from __future__ import annotations

import threading
from pathlib import Path

from newwave.catalog import Catalog, JobProgress
from newwave.indexer import Embedder, EmbedProgress
from newwave.library import ScanProgress, Scanner
from newwave.search import SearchEngine


class JobAlreadyRunning(RuntimeError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"a library scan is already running (job {job_id})")
        self.job_id = job_id


class LibraryJobs:
    """One library scan at a time, in a thread with its own catalog connection; its
    progress lives in the catalog's jobs table, so any process can read it."""

    def __init__(self, catalog_path: Path, engine: SearchEngine) -> None:
        self.catalog_path = catalog_path
        self.engine = engine
        self._lock = threading.Lock()
        self._running: tuple[int, threading.Thread] | None = None

    def start_scan(self, catalog: Catalog) -> int:
        with self._lock:
            if self._running is not None and self._running[1].is_alive():
                raise JobAlreadyRunning(self._running[0])
            roots = catalog.roots()
            job_id = catalog.start_job("library-scan", {"roots": roots})
            thread = threading.Thread(target=self._scan, args=(job_id, roots),
                                      name=f"newwave-scan-{job_id}", daemon=True)
            self._running = (job_id, thread)
            thread.start()
            return job_id

    def _scan(self, job_id: int, roots: list[str]) -> None:
        with Catalog(self.catalog_path) as catalog:
            job = JobProgress(catalog, job_id)
            try:
                for root in roots:
                    def scanned(p: ScanProgress, root: str = root) -> None:
                        job.update(p.done, p.total, f"scanning {root}: {p.path.name}")
                    Scanner(catalog, on_progress=scanned).scan(Path(root))

                def embedded(p: EmbedProgress) -> None:
                    job.update(p.done, p.total, f"embedding {p.stage}: {p.track.title}")
                report = Embedder(catalog, self.engine.models, on_progress=embedded).run()
                self.engine.sync()
                catalog.finish_job(job_id, "done", message=(
                    f"scanned {len(roots)} folders; embedded {report.audio_embedded} tracks"))
            except Exception as exc:  # recorded for the client; the server keeps running
                catalog.finish_job(job_id, "failed", error=str(exc))
