"""Jobs left "running" by a process that died are marked interrupted; live ones stay."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from newwave.catalog import Catalog
from newwave.catalog.schema import MIGRATIONS

JOB_OWNER = """
import sys, time
from pathlib import Path
from newwave.catalog import Catalog
catalog = Catalog(Path(sys.argv[1]))
print(catalog.start_job("embed", {"audio_model": "musicnn"}, total=10), flush=True)
time.sleep(120)
"""


def start_owner(path: Path) -> tuple[subprocess.Popen[str], int]:
    """A process that starts a job in the catalog at ``path`` and then keeps running."""
    process = subprocess.Popen([sys.executable, "-c", JOB_OWNER, str(path)], text=True,
                               stdout=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def test_a_job_of_a_killed_process_is_marked_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    with Catalog(path) as catalog:
        killed, killed_job = start_owner(path)
        live, live_job = start_owner(path)
        own_job = catalog.start_job("library-scan", {"roots": []})
        try:
            catalog.update_job(killed_job, done=4, total=10, message="track 4")
            assert catalog.job(killed_job).pid == killed.pid
            killed.kill()  # not reaped yet: a zombie has ended too
            deadline = time.monotonic() + 30
            while catalog.job_process_alive(catalog.job(killed_job)):
                assert time.monotonic() < deadline, "the killed process still looks alive"
                time.sleep(0.05)

            interrupted = catalog.interrupt_orphaned_jobs()

            assert [job.id for job in interrupted] == [killed_job]
            job = catalog.job(killed_job)
            assert job.status == "interrupted" and job.finished_at is not None
            assert job.message == (f"interrupted: the process running it (pid {killed.pid}) "
                                   "ended; 4 of 10 done")
            assert catalog.job(live_job).status == "running"  # its process still runs
            assert catalog.job(own_job).status == "running"  # this process's own job
            assert catalog.interrupt_orphaned_jobs() == []  # nothing left to do
        finally:
            for process in (killed, live):
                process.kill()
                process.wait()
                process.stdout.close()
        # After the restart the survivor's process is gone as well.
        assert [job.id for job in catalog.interrupt_orphaned_jobs()] == [live_job]


def test_a_reused_pid_does_not_keep_a_job_running(catalog: Catalog) -> None:
    """The owner's start time tells a new process that got the same pid from the old one;
    a process on another host cannot be checked and is left alone."""
    reused = catalog.start_job("embed", {})
    elsewhere = catalog.start_job("embed", {})
    with catalog.transaction() as conn:
        conn.execute("UPDATE jobs SET owner = ? WHERE id = ?",
                     (f"{socket.gethostname()}/1", reused))
        conn.execute("UPDATE jobs SET owner = 'another-host/1', pid = 1 WHERE id = ?",
                     (elsewhere,))
    assert [job.id for job in catalog.interrupt_orphaned_jobs()] == [reused]
    assert catalog.job(elsewhere).status == "running"


def test_jobs_written_before_the_migration_are_recovered(tmp_path: Path) -> None:
    """Catalogs from before jobs recorded their process: a scan job's pid in its params is
    still honoured, a job without any pid counts as orphaned."""
    path = tmp_path / "catalog.sqlite"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    conn = sqlite3.connect(path)
    conn.executescript(f"{MIGRATIONS[0]}\nPRAGMA user_version = 1;")
    now = time.time()
    for params in ({"root": "/m", "pid": int(dead.stdout)}, {"root": "/n", "pid": os.getpid()},
                   {"audio_model": "musicnn"}):
        conn.execute("INSERT INTO jobs (kind, status, params, created_at, updated_at) "
                     "VALUES ('scan', 'running', ?, ?, ?)", (json.dumps(params), now, now))
    conn.commit()
    conn.close()
    with Catalog(path) as catalog:
        interrupted = catalog.interrupt_orphaned_jobs()
        assert [job.id for job in interrupted] == [1, 3]
        assert interrupted[0].message == (f"interrupted: the process running it "
                                          f"(pid {int(dead.stdout)}) ended")
        assert interrupted[1].message == "interrupted: the process running it ended"
        assert catalog.job(2).status == "running" and catalog.job(2).pid is None
