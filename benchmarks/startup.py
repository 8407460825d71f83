"""Start-up time of the `newwave` command: wall time of `newwave --help` and
`newwave library stats` (on a fresh, empty data dir) against `python -c pass` in the same
run, each a fresh subprocess, and which heavy modules `import newwave.cli` loads (it
should load none). Writes the "startup" section of docs/benchmarks.md.

Commands are run round-robin (one of each per round, after one untimed warm-up round),
so background load spreads evenly over them; each row is the median of the rounds.

    python benchmarks/startup.py [--runs 10] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section  # noqa: E402

TARGET_HELP_S = 0.5
# What a start-up must not pay for: the model, index and server stacks.
HEAVY = ("torch", "faiss", "transformers", "sentence_transformers", "onnxruntime", "onnx",
         "uvicorn", "fastapi", "matplotlib", "pyarrow")
# Light dependencies the catalog and scanner need; listed for information.
LIGHT = ("numpy", "av", "mutagen", "soxr", "soundfile", "PIL", "rapidfuzz", "rich", "typer")


def newwave_command() -> list[str]:
    """The installed console script, as a user runs it (else the module)."""
    script = Path(sys.executable).parent / "newwave"
    return [str(script)] if script.exists() else [sys.executable, "-m", "newwave.cli"]


def isolated_env(work: Path) -> dict[str, str]:
    """No user settings: a private config path (absent), data and cache dirs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWWAVE_")}
    env.update(NEWWAVE_CONFIG=str(work / "absent.toml"), NEWWAVE_CACHE_DIR=str(work / "cache"),
               COLUMNS="100")
    return env


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user + system) of one run of ``argv``. CPU time hardly
    grows when other processes compete for the cores; wall time does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def loaded_after_import(env: dict[str, str]) -> dict[str, list[str]]:
    code = ("import json, sys, newwave.cli; "
            f"print(json.dumps({{g: [m for m in names if m in sys.modules] for g, names in "
            f"{{'heavy': {HEAVY!r}, 'light': {LIGHT!r}}}.items()}}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10, help="timed rounds (median reported)")
    parser.add_argument("--no-write", action="store_true",
                        help="print the section only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    cli = newwave_command()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="newwave-bench-") as tmp:
        work = Path(tmp)
        env = isolated_env(work)
        fresh = iter(range(10**6))

        def stats_on_fresh_dir() -> list[str]:
            return [*cli, "--data-dir", str(work / f"data{next(fresh)}"), "library", "stats"]

        commands = {
            "`python -c pass` (baseline)": lambda: [sys.executable, "-c", "pass"],
            "`python -c 'import newwave.cli'`": lambda: [sys.executable, "-c",
                                                          "import newwave.cli"],
            "`newwave --help`": lambda: [*cli, "--help"],
            "`newwave library stats` (fresh empty data dir)": stats_on_fresh_dir,
        }
        times: dict[str, list[float]] = {label: [] for label in commands}
        cpu: dict[str, list[float]] = {label: [] for label in commands}
        for round_ in range(args.runs + 1):
            for label, argv in commands.items():
                elapsed, used = timed(argv(), env)
                if round_:  # round 0 warms the page cache and is not counted
                    times[label].append(elapsed)
                    cpu[label].append(used)
        loaded = loaded_after_import(env)
    load_after = os.getloadavg()[0]

    medians = {label: statistics.median(values) for label, values in times.items()}
    base = medians["`python -c pass` (baseline)"]
    rows = []
    for label, values in times.items():
        rows.append(f"| {label} | {medians[label]:.3f} | {min(values):.3f} / {max(values):.3f} "
                    f"| {medians[label] / base:.1f}x | {statistics.median(cpu[label]):.3f} |")
        print(f"{label}: median {medians[label]:.3f} s (min {min(values):.3f}, "
              f"max {max(values):.3f}), {medians[label] / base:.1f}x python -c pass", flush=True)
    help_s = medians["`newwave --help`"]
    help_cpu = statistics.median(cpu["`newwave --help`"])
    verdict = "met" if help_s < TARGET_HELP_S else "NOT met"
    heavy = ", ".join(loaded["heavy"]) or "none"
    light = ", ".join(loaded["light"]) or "none"
    print(f"heavy modules after `import newwave.cli`: {heavy}; light: {light}")
    print(f"load average (1 min): {load_before:.2f} before, {load_after:.2f} after")
    body = f"""
## Start-up (`benchmarks/startup.py`)

Machine: {machine()}.
Median wall time of {args.runs} runs, each a fresh subprocess (commands run round-robin
after one untimed warm-up round); `newwave` is the installed console script with an
empty config and a temporary data dir. Load average (1 min) {load_before:.2f} before the
run and {load_after:.2f} after it.

| command | median s | min / max s | vs `python -c pass` | median CPU s (user + sys) |
|---|---|---|---|---|
{chr(10).join(rows)}

Heavy modules loaded by `import newwave.cli` ({', '.join(HEAVY)}): **{heavy}**.
Lighter dependencies it does load: {light}.

Target: `newwave --help` under {TARGET_HELP_S} s on this machine -> measured
{help_s:.3f} s wall time ({verdict}); it used {help_cpu:.3f} s of CPU, about what it takes
when it has a core to itself. Models, FAISS, torch and the web server load inside the commands
that use them (`search`, `index`, `serve`, ...), never at start-up.
"""
    print(body)
    if not args.no_write:
        write_section("startup", body)


if __name__ == "__main__":
    main()
