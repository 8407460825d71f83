"""Background library jobs for the API: rescan every library folder, embed, re-index."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from newwave.catalog import JobProgress
from newwave.errors import Conflict
from newwave.library import ScanProgress
from newwave.service import NewWave, UpdateProgress

if TYPE_CHECKING:
    from newwave.indexer import EmbedProgress


class JobAlreadyRunning(Conflict):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"a library scan is already running (job {job_id}); poll /jobs/{job_id}")
        self.job_id = job_id


class _JobProgress(UpdateProgress):
    """Writes an update's progress into the job's row, where any process can read it."""

    def __init__(self, job: JobProgress) -> None:
        self.job = job
        self.root = ""

    def scanning(self, root: Path) -> None:
        self.root = str(root)

    def scanned(self, update: ScanProgress) -> None:
        self.job.update(update.done, update.total, f"scanning {self.root}: {update.path.name}")

    def embedding(self, update: EmbedProgress) -> None:
        self.job.update(update.done, update.total,
                        f"embedding {update.stage}: {update.track.title}")


class LibraryJobs:
    """One library scan at a time, in a background thread of the server."""

    def __init__(self, service: NewWave) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._running: tuple[int, threading.Thread] | None = None

    def start_scan(self) -> int:
        with self._lock:
            if self._running is not None and self._running[1].is_alive():
                raise JobAlreadyRunning(self._running[0])
            catalog = self.service.catalog
            roots = catalog.roots()
            job_id = catalog.start_job("library-scan", {"roots": roots})
            thread = threading.Thread(target=self._scan, args=(job_id, roots),
                                      name=f"newwave-scan-{job_id}", daemon=True)
            self._running = (job_id, thread)
            thread.start()
            return job_id

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the running scan, if any (at shutdown: the catalog must outlive it)."""
        if self._running is not None:
            self._running[1].join(timeout)

    def _scan(self, job_id: int, roots: list[str]) -> None:
        catalog = self.service.catalog
        try:
            report = self.service.update([Path(r) for r in roots],
                                         progress=_JobProgress(JobProgress(catalog, job_id)))
            embedded = report.embedded.audio_embedded if report.embedded else 0
            catalog.finish_job(job_id, "done", message=(
                f"scanned {len(roots)} folders; embedded {embedded} tracks"))
        except Exception as exc:  # recorded for the client; the server keeps running
            catalog.finish_job(job_id, "failed", error=str(exc))
