"""Query latency of text -> tracks at 1k, 10k, 100k and 1M tracks, exact (flat) vs
approximate (IVF) FAISS search, with the approximate index's recall@10 against exact
search, and with the text encoder's time included. Writes the "search" section of
docs/benchmarks.md.

Vectors beyond the real library are synthetic: 384-d (the text encoder's space, the
largest of NewWave's spaces), drawn around 2,000 cluster centres and L2-normalised, so
the approximate index faces realistic structure rather than uniform noise.

    python benchmarks/search.py [--sizes 1000 10000 100000 1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section  # noqa: E402

from newwave.index import build_index  # noqa: E402
from newwave.index.faiss_index import DEFAULT_APPROXIMATE_FROM  # noqa: E402
from newwave.models.base import l2_normalize  # noqa: E402
from newwave.models.text import SentenceTransformerEncoder  # noqa: E402

DIM = 384


def synthetic(rng: np.random.Generator, n: int, centres: np.ndarray) -> np.ndarray:
    picks = rng.integers(0, len(centres), n)
    return l2_normalize(centres[picks] + 0.6 * l2_normalize(rng.standard_normal((n, DIM))) )


def latencies(index: faiss.Index, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Per-query milliseconds (one query at a time, as a user sends them) and the ids."""
    times, found = [], []
    for query in queries:
        start = time.perf_counter()
        _, ids = index.search(query[None], k)
        times.append((time.perf_counter() - start) * 1000)
        found.append(ids[0])
    return np.array(times), np.array(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000, 1000000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centres = l2_normalize(rng.standard_normal((2000, DIM)))
    encoder = SentenceTransformerEncoder()
    texts = [f"melancholic piano for a rainy evening, take {i}" for i in range(args.queries)]
    encoder.encode(texts[:5])
    encode_ms = []
    for text in texts:
        start = time.perf_counter()
        encoder.encode([text])
        encode_ms.append((time.perf_counter() - start) * 1000)
    encode_ms = np.array(encode_ms)
    print(f"query encoding: p50 {np.median(encode_ms):.1f} ms", flush=True)
    queries = synthetic(rng, args.queries, centres)
    rows = []
    for size in args.sizes:
        vectors = synthetic(rng, size, centres)
        ids = np.arange(size, dtype=np.int64)
        exact = build_index(vectors, ids, approximate=False)
        start = time.perf_counter()
        approx = build_index(vectors, ids, approximate=True)
        build_s = time.perf_counter() - start
        exact_ms, exact_ids = latencies(exact, queries)
        approx_ms, approx_ids = latencies(approx, queries)
        recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx_ids, exact_ids)])
        default = "IVF" if size >= DEFAULT_APPROXIMATE_FROM else "flat"
        chosen_ms = approx_ms if default == "IVF" else exact_ms
        total = np.median(encode_ms + chosen_ms)
        rows.append((size, exact_ms, approx_ms, recall, build_s, default, total,
                     faiss.downcast_index(approx).nprobe, faiss.downcast_index(approx).nlist))
        print(f"{size:>9,}: flat p50 {np.median(exact_ms):.2f} ms, IVF p50 "
              f"{np.median(approx_ms):.2f} ms, recall@10 {recall:.3f}, end-to-end p50 "
              f"{total:.1f} ms", flush=True)
        del vectors, exact, approx
    table = "\n".join(
        f"| {size:,} | {np.median(e):.2f} / {np.percentile(e, 99):.2f} | "
        f"{np.median(a):.2f} / {np.percentile(a, 99):.2f} | {recall:.3f} | {nlist} / {nprobe} | "
        f"{build:.1f} | {default} | {total:.1f} |"
        for size, e, a, recall, build, default, total, nprobe, nlist in rows)
    hundred_k = next((r for r in rows if r[0] == 100_000), None)
    verdict = (f"measured p50 {hundred_k[6]:.1f} ms ({'met' if hundred_k[6] < 20 else 'missed'})"
               if hundred_k else "not measured in this run")
    write_section("search", f"""
## Search latency (`benchmarks/search.py`)

Machine: {machine()}; faiss {faiss.__version__}.
{args.queries} queries, one at a time, k = 10, 384-d synthetic clustered vectors.
Query encoding (all-MiniLM-L6-v2, one query): p50 {np.median(encode_ms):.1f} ms,
p99 {np.percentile(encode_ms, 99):.1f} ms.

| tracks | flat p50 / p99 ms | IVF p50 / p99 ms | IVF recall@10 vs flat | IVF lists / probes | IVF build s | NewWave uses | p50 ms incl. encoding |
|---|---|---|---|---|---|---|---|
{table}

NewWave switches from flat to IVF at {DEFAULT_APPROXIMATE_FROM:,} vectors
(`approximate_from`). Target: p50 under 20 ms for text -> tracks at 100k tracks
including query encoding: {verdict}.
""")


if __name__ == "__main__":
    main()
