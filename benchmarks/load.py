"""Sustained load on a real `newwave serve`: throughput, tail latency, errors and memory.
Writes the "load" section of docs/benchmarks.md.

One `newwave serve` process (uvicorn, one worker) on loopback over the synthesized demo
library, indexed first (as benchmarks/api.py does). From this process, with asyncio and
httpx, three runs of ``--seconds`` each:

1. ``--clients`` concurrent clients on ``/search/combined`` (NDJSON, read to the end),
   half of the queries repeated from a fixed set of 14 (answered by the query encoder's
   LRU cache after their first use), half unique (each one encoded: micro-batched with
   the other clients' queries);
2. the same clients on ``/health``: the HTTP stack alone, the baseline;
3. a mixed run: searches (50%), Range reads of ``/tracks/{id}/audio`` (30%, 64 KiB at a
   random offset), ``POST /feedback`` plays (20%), and one ``POST /library/scan`` a third
   of the way in (its job polled to the end).

Per run: requests/s, p50/p99 latency, errors (any status outside 2xx/3xx, or an
exception), the server's RSS (VmRSS from /proc/<pid>/status) before and after, and the
server's CPU time. ``--soak`` instead runs the mixed load for 10 minutes, sampling the
RSS every 30 s, and prints the growth (it does not write the doc; not for CI).

    python benchmarks/load.py [--seconds 60] [--clients 16]
    python benchmarks/load.py --soak
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section  # noqa: E402
from api import QUERIES  # noqa: E402  (the 14 demo queries benchmarks/api.py rotates)

from newwave.demo.synth import build_synthetic_library  # noqa: E402

TARGET_RPS = 200
TARGET_P99_MS = 150
LOOPBACK = "127.0.0.1"
RANGE_BYTES = 64 * 1024
# Words for unique queries: "<mood> <instrument> <n>" never repeats within a run.
MOODS = ["calm", "dark", "bright", "sad", "happy", "dreamy", "angry", "warm", "cold", "slow",
         "fast", "quiet", "loud", "gentle", "epic", "lonely"]
THINGS = ["piano", "strings", "drums", "guitar", "synth", "bass", "voice", "choir", "flute",
          "organ", "beat", "ambient", "song about home", "night drive", "rain", "dance"]


# --- the server -------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@contextmanager
def serve(tmp: Path, seconds: float) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """(base URL, server process, library folder): an indexed synthetic library served on
    loopback; the server is stopped on exit."""
    library = tmp / "library"
    build_synthetic_library(library, seconds=seconds)
    env = {**os.environ, "NEWWAVE_DATA_DIR": str(tmp / "data")}
    cli = [sys.executable, "-m", "newwave.cli"]
    subprocess.run([*cli, "index", str(library)], env=env, check=True, capture_output=True)
    port = free_port()
    log = open(tmp / "server.log", "wb")
    server = subprocess.Popen([*cli, "serve", "--host", LOOPBACK, "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{(tmp / 'server.log').read_text()}")
            time.sleep(0.3)
        yield url, server, library
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the load -------------------------------------------------------------------------

@dataclass
class Stats:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)


@dataclass
class Run:
    name: str
    seconds: float
    clients: int
    by_kind: dict[str, Stats]
    rss_before: float
    rss_after: float
    server_cpu_s: float
    client_cpu_s: float
    load_before: float
    notes: list[str] = field(default_factory=list)

    def row(self, kind: str) -> tuple[int, float, float, float, int]:
        stats = self.by_kind[kind]
        ms = np.array(stats.latencies_ms) if stats.latencies_ms else np.array([np.nan])
        n = len(stats.latencies_ms) + stats.errors
        return n, n / self.seconds, float(np.median(ms)), float(np.percentile(ms, 99)), stats.errors


class Queries:
    """Every other query repeats one of the 14 demo queries; the others are unique."""

    def __init__(self) -> None:
        self.n = itertools.count()
        self.unique = itertools.count()

    def next(self) -> str:
        n = next(self.n)
        if n % 2 == 0:
            return QUERIES[(n // 2) % len(QUERIES)]
        u = next(self.unique)
        return f"{MOODS[u % len(MOODS)]} {THINGS[(u // len(MOODS)) % len(THINGS)]} {u}"


async def timed(stats: Stats, request) -> httpx.Response | None:
    start = time.perf_counter()
    try:
        response = await request
        await response.aread()
    except Exception as exc:  # noqa: BLE001 - every failure is an error of the run
        stats.error(f"{type(exc).__name__}: {exc}")
        return None
    elapsed = (time.perf_counter() - start) * 1000
    if not 200 <= response.status_code < 400:
        stats.error(f"{response.status_code} {response.request.method} {response.request.url}: "
                    f"{response.text[:200]}")
        return response
    stats.latencies_ms.append(elapsed)
    return response


async def drive(url: str, clients: int, seconds: float, pick, on_start=None) -> dict[str, Stats]:
    """``clients`` workers, each sending ``pick(client, rng)``'s request until time is up.
    ``pick`` returns (kind, method, path, keyword arguments for httpx)."""
    by_kind: dict[str, Stats] = {}
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        end = time.monotonic() + seconds

        async def worker(index: int) -> None:
            rng = random.Random(index)
            while time.monotonic() < end:
                kind, method, path, kwargs = pick(index, rng)
                stats = by_kind.setdefault(kind, Stats())
                await timed(stats, client.request(method, path, **kwargs))

        tasks = [worker(i) for i in range(clients)]
        if on_start is not None:
            tasks.append(on_start(client, by_kind, end))
        await asyncio.gather(*tasks)
    return by_kind


def measure(name: str, url: str, server: subprocess.Popen, clients: int, seconds: float, pick,
            on_start=None) -> Run:
    load_before = os.getloadavg()[0]
    rss_before, cpu_before = rss_mb(server.pid), cpu_seconds(server.pid)
    client_before = cpu_seconds(os.getpid())
    start = time.perf_counter()
    by_kind = asyncio.run(drive(url, clients, seconds, pick, on_start))
    elapsed = time.perf_counter() - start
    run = Run(name, elapsed, clients, by_kind, rss_before, rss_mb(server.pid),
              cpu_seconds(server.pid) - cpu_before, cpu_seconds(os.getpid()) - client_before,
              load_before)
    for kind in sorted(by_kind):
        n, rate, p50, p99, errors = run.row(kind)
        print(f"{name} / {kind}: {n} requests, {rate:.0f} req/s, p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms, {errors} errors", flush=True)
        for sample in by_kind[kind].error_samples:
            print(f"    error: {sample}", flush=True)
    print(f"{name}: RSS {run.rss_before:.0f} -> {run.rss_after:.0f} MB, server CPU "
          f"{run.server_cpu_s:.0f} s, load generator CPU {run.client_cpu_s:.0f} s in "
          f"{elapsed:.0f} s", flush=True)
    return run


def search_pick(queries: Queries):
    def pick(_client: int, _rng: random.Random):
        return ("/search/combined", "GET", "/search/combined",
                {"params": {"q": queries.next(), "limit": 10}})
    return pick


def mixed_pick(queries: Queries, tracks: dict[int, int]):
    ids = sorted(tracks)

    def pick(_client: int, rng: random.Random):
        roll = rng.random()
        track = rng.choice(ids)
        if roll < 0.5:
            return search_pick(queries)(_client, rng)
        if roll < 0.8:
            start = rng.randrange(0, max(1, tracks[track] - RANGE_BYTES))
            return ("Range /tracks/{id}/audio", "GET", f"/tracks/{track}/audio",
                    {"headers": {"Range": f"bytes={start}-{start + RANGE_BYTES - 1}"}})
        return ("POST /feedback", "POST", "/feedback",
                {"json": {"track_id": track, "kind": "play"}})
    return pick


def scan_once(at_fraction: float, seconds: float, notes: list[str]):
    """A task that sends one POST /library/scan ``at_fraction`` into the run and polls its
    job to the end (the polls are not counted as load)."""
    async def start(client: httpx.AsyncClient, by_kind: dict[str, Stats], end: float) -> None:
        await asyncio.sleep(seconds * at_fraction)
        stats = by_kind.setdefault("POST /library/scan", Stats())
        response = await timed(stats, client.post("/library/scan"))
        if response is None or response.status_code != 202:
            notes.append("the scan was not started")
            return
        job, began = response.json()["id"], time.monotonic()
        while True:
            state = (await client.get(f"/jobs/{job}")).json()
            if state["status"] != "running":
                notes.append(f"library scan job {job}: {state['status']} after "
                             f"{time.monotonic() - began:.1f} s ({state.get('message') or ''})")
                return
            if time.monotonic() > end + 120:
                notes.append(f"library scan job {job}: still running 120 s after the run")
                return
            await asyncio.sleep(1)
    return start


def track_sizes(url: str) -> dict[int, int]:
    """Track id -> file size in bytes, from the library's search hits and Content-Range."""
    hits = httpx.get(f"{url}/search/combined", params={"q": "music", "limit": 100},
                     headers={"Accept": "application/json"}, timeout=120).json()["hits"]
    sizes = {}
    for hit in hits:
        answer = httpx.get(f"{url}/tracks/{hit['track']['id']}/audio",
                           headers={"Range": "bytes=0-0"}, timeout=30)
        sizes[hit["track"]["id"]] = int(answer.headers["content-range"].rsplit("/", 1)[1])
    return sizes


# --- the report -----------------------------------------------------------------------

def report(runs: list[Run], args: argparse.Namespace, load_at_start: float) -> str:
    rows = []
    for run in runs:
        for kind in sorted(run.by_kind, key=lambda k: (k != "/search/combined", k)):
            n, rate, p50, p99, errors = run.row(kind)
            rows.append(f"| {run.name} | `{kind}` | {n:,} | {rate:,.0f} | {p50:.1f} | {p99:.1f} "
                        f"| {errors} |")
    search = runs[0]
    _, rate, _, p99, _ = search.row("/search/combined")
    errors = sum(stats.errors for run in runs for stats in run.by_kind.values())
    verdicts = [("throughput", rate >= TARGET_RPS, f"{rate:,.0f} req/s vs ≥ {TARGET_RPS}"),
                ("tail latency", p99 < TARGET_P99_MS, f"p99 {p99:.0f} ms vs < {TARGET_P99_MS} ms"),
                ("errors", errors == 0, f"{errors} in all runs vs 0")]
    verdict = "; ".join(f"{what} {'met' if ok else '**not met**'} ({detail})"
                        for what, ok, detail in verdicts)
    memory = "\n".join(f"| {run.name} | {run.rss_before:.0f} | {run.rss_after:.0f} | "
                       f"{round(run.rss_after - run.rss_before):+d} | {run.server_cpu_s:.0f} s "
                       f"({run.server_cpu_s / run.seconds:.0%} of one core) | "
                       f"{run.client_cpu_s:.0f} s ({run.client_cpu_s / run.seconds:.0%}) |"
                       for run in runs)
    notes = "".join(f"\n- {note}" for run in runs for note in run.notes)
    shared = (f"The 1-minute load average was {load_at_start:.1f} before the runs (2 cores): "
              + ("other processes (other engineers' test runs) shared the cores, so these "
                 "numbers are lower and noisier than on an idle machine."
                 if load_at_start >= 1.0 else "the machine was otherwise idle."))
    per_run = ", ".join(f"{run.name} {run.load_before:.1f}" for run in runs)
    return f"""
## Sustained load (`benchmarks/load.py`)

Machine: {machine()}.
One `newwave serve` process (uvicorn, one worker) on loopback over the synthesized demo
library (6 tracks of 20 s, offline models); the load generator (httpx, asyncio, one
process) runs on the same cores. {args.clients} concurrent clients,
{args.seconds:.0f} s per run.
{shared} (Load average at the start of each run: {per_run}.)

Queries for `/search/combined` (NDJSON, read to the end, `limit=10`): **50% repeated**
(the 14 demo queries of `benchmarks/api.py` in rotation, answered by the query encoder's
LRU cache after their first use) and **50% unique** (`"<mood> <thing> <n>"`, each one
encoded by MiniLM, micro-batched with the queries of the other clients). The mixed run:
50% those searches, 30% Range reads of `/tracks/{{id}}/audio` (64 KiB at a random offset,
206), 20% `POST /feedback` (`{{"track_id": id, "kind": "play"}}`), and one
`POST /library/scan` a third of the way in. An error is any status outside 2xx/3xx or an
exception.

| run | requests | count | requests/s | p50 ms | p99 ms | errors |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Server memory (VmRSS) and CPU per run, and the load generator's own CPU, taken from the
same 2 cores (server CPU well under 200% while clients wait means the server was not the
only thing on the cores; `/health` is bounded by the load generator and the shared CPU
rather than by the server):

| run | RSS before MB | RSS after MB | growth MB | server CPU | load generator CPU |
|---|---|---|---|---|---|
{memory}
{notes}

Targets for `/search/combined` with {args.clients} clients: at least {TARGET_RPS} req/s,
p99 under {TARGET_P99_MS} ms, zero errors. Result: {verdict}.

`python benchmarks/load.py --soak` runs the mixed load for 10 minutes and prints the RSS
growth (not run in CI).
"""


def soak(url: str, server: subprocess.Popen, clients: int, tracks: dict[int, int],
         minutes: float) -> None:
    seconds, every = minutes * 60, 30.0
    samples: list[tuple[float, float]] = [(0.0, rss_mb(server.pid))]
    notes: list[str] = []

    async def sampler(_client, _by_kind, end: float) -> None:
        began = time.monotonic()
        while time.monotonic() < end:
            await asyncio.sleep(every)
            samples.append((time.monotonic() - began, rss_mb(server.pid)))
            print(f"  {samples[-1][0]:4.0f} s: RSS {samples[-1][1]:.0f} MB", flush=True)

    run = measure("soak (mixed)", url, server, clients, seconds, mixed_pick(Queries(), tracks),
                  sampler)
    run.notes = notes
    requests = sum(len(s.latencies_ms) + s.errors for s in run.by_kind.values())
    # The slope over the second half: start-up caches have filled by then.
    half = [(t, r) for t, r in samples if t >= seconds / 2] or samples
    slope = (np.polyfit([t for t, _ in half], [r for _, r in half], 1)[0] * 60
             if len(half) > 1 else 0.0)
    print(f"soak: {requests:,} requests in {run.seconds:.0f} s; RSS {samples[0][1]:.0f} -> "
          f"{samples[-1][1]:.0f} MB (max {max(r for _, r in samples):.0f}), "
          f"{(samples[-1][1] - samples[0][1]) / max(1, requests) * 1000:.2f} MB per 1k requests, "
          f"second-half slope {slope:+.2f} MB/min", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="length of each run")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--soak", action="store_true",
                        help="10 minutes of mixed load, RSS growth printed (no doc written)")
    parser.add_argument("--soak-minutes", type=float, default=10, help=argparse.SUPPRESS)
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]
    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp), seconds=20) as (url, server, _):
        # Warm up: models, indexes, the first batches; then the runs.
        for query in QUERIES:
            httpx.get(f"{url}/search/combined", params={"q": query}, timeout=120).raise_for_status()
        tracks = track_sizes(url)
        if args.soak:
            soak(url, server, args.clients, tracks, args.soak_minutes)
            return
        runs = [measure("search", url, server, args.clients, args.seconds,
                        search_pick(Queries())),
                measure("health", url, server, args.clients, args.seconds,
                        lambda _c, _r: ("/health", "GET", "/health", {}))]
        notes: list[str] = []
        mixed = measure("mixed", url, server, args.clients, args.seconds,
                        mixed_pick(Queries(), tracks), scan_once(1 / 3, args.seconds, notes))
        mixed.notes = notes
        runs.append(mixed)
    write_section("load", report(runs, args, load_at_start))


if __name__ == "__main__":
    main()
