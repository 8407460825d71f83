"""Mutation testing of NewWave's core modules with mutmut (see docs/testing.md).

    python scripts/mutation.py run [GROUP ...] [--tests before|current] [--timeout S]
    python scripts/mutation.py report        # the markdown table of the last runs

Each group is one module (or a few functions of it) with the test files that are meant
to guard it. A run copies ``src/`` and the tests into ``.mutation/<group>-<tests>/``
(``--tests before`` takes the tests of git's HEAD, ``current`` those of the working
tree), writes a ``[tool.mutmut]`` section naming that group's file and tests, and runs
``mutmut run`` there on the group's mutants only. The working tree is never modified.
Results land in ``.mutation/results/<group>-<tests>.json``.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import io
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
RESULTS = WORK / "results"
SEP = "ǁ"  # mutmut's separator in method mutant names


@dataclass(frozen=True)
class Group:
    file: str  # relative to src/
    functions: list[str]  # mangled names (fnmatch): x_func, xǁClassǁmethod
    tests: list[str]  # pytest node ids / files (passed to pytest for stats)
    nested: list[str] = field(default_factory=list)  # only mutants inside these inner defs


GROUPS: dict[str, Group] = {
    "metrics": Group("newwave/eval/metrics.py", ["*"], [
        "tests/test_eval.py::test_metrics_on_a_hand_checked_ranking",
        "tests/test_eval.py::test_evaluate_means_ranks_and_intervals",
        "tests/test_metrics.py"]),
    "rank_fusion": Group("newwave/search/rank_fusion.py", ["*"], [
        "tests/test_rank_fusion.py", "tests/test_search.py"]),
    "catalog_filters": Group("newwave/catalog/catalog.py",
                             [f"x{SEP}Catalog{SEP}filter_track_ids", "x__contains_pattern"],
                             ["tests/test_filters.py", "tests/test_catalog.py",
                              "tests/test_search.py"]),
    "engine_fusion_filters": Group("newwave/search/engine.py",
                                   [f"x{SEP}SearchEngine{SEP}_fuse",
                                    f"x{SEP}SearchEngine{SEP}_allowed",
                                    f"x{SEP}SearchEngine{SEP}_ranked"],
                                   ["tests/test_filters.py", "tests/test_search.py"]),
    "api_limits_tracks": Group("newwave/api/app.py", ["x_create_app"],
                               ["tests/test_api.py", "-k", "in_process"],
                               nested=["search_by_audio", "present_track", "audio"]),
    "scanner_identity": Group("newwave/library/scanner.py",
                              [f"x{SEP}Scanner{SEP}_scan_files", f"x{SEP}Scanner{SEP}_scan_file",
                               f"x{SEP}Scanner{SEP}_moved_track",
                               f"x{SEP}Scanner{SEP}_mark_missing", "x__same_stats",
                               "x_hash_file"],
                              ["tests/test_scanner.py"]),
}

# Test files written or changed by issue 19 ("current" takes them from the working tree).
OWN_TESTS = ["conftest.py", "test_metrics.py", "test_eval.py", "test_rank_fusion.py",
             "test_filters.py", "test_api.py", "test_cli_commands.py", "test_cli_and_demo.py",
             "test_web.py"]
STATUS_KILLED = {"killed", "timeout", "segfault", "caught by type check"}


def module_name(group: Group) -> str:
    return group.file.removesuffix(".py").replace("/", ".")


def enumerate_mutants(group: Group, source: str) -> dict[str, tuple[int, str, str]]:
    """The group's mutants: mutmut's name -> (line in the original file, old line, new line)."""
    from mutmut.mutation.file_mutation import mutate_file_contents

    mutated = mutate_file_contents(f"src/{group.file}", source, None, None)
    lines = mutated.code.splitlines()
    spans = mutated.line_span_by_function_name
    original = source.splitlines()
    tree = ast.parse(source)
    starts = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    starts[f"x{SEP}{node.name}{SEP}{item.name}"] = item
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            starts[f"x_{node.name}"] = node
    found = {}
    for name in mutated.mutant_names:
        base = name.rsplit("__mutmut_", 1)[0]
        if not any(fnmatch.fnmatch(base, pattern) for pattern in group.functions):
            continue
        orig_span, span = spans[f"{base}__mutmut_orig"], spans[name]
        old = lines[orig_span.start - 1:orig_span.end]
        new = [line.replace(name, f"{base}__mutmut_orig")
               for line in lines[span.start - 1:span.end]]
        changed = [(i, j) for tag, i, _, j, _ in
                   difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
                   if tag != "equal"]
        offset = changed[0][0] if changed else 0
        node = starts.get(base)
        line = _source_line(original, node, old[offset] if offset < len(old) else "")
        if group.nested and not _inside(node, line, group.nested):
            continue
        old_text = original[line - 1].strip() if 0 < line <= len(original) else ""
        new_text = new[changed[0][1]].strip() if changed and changed[0][1] < len(new) else ""
        found[f"{module_name(group)}.{name}"] = (line, old_text, new_text)
    return found


def _source_line(original: list[str], node: ast.AST | None, text: str) -> int:
    """The line of the original file that mutmut's copy of ``text`` came from."""
    if node is None:
        return 0
    text = text.split("  # type: ignore")[0].strip()
    for number in range(node.lineno, node.end_lineno + 1):
        if original[number - 1].strip() == text:
            return number
    return node.lineno


def _inside(node: ast.AST | None, line: int, names: list[str]) -> bool:
    if node is None:
        return False
    for inner in ast.walk(node):
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)) and inner.name in names \
                and inner.lineno <= line <= inner.end_lineno:
            return True
    return False


def prepare(name: str, group: Group, tests: str) -> Path:
    work = WORK / f"{name}-{tests}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    # src and tests as committed (HEAD): a consistent tree even while someone is
    # refactoring in the working tree; `current` overlays the working tree's versions of
    # the test files that issue 19 wrote or changed.
    archive = subprocess.run(["git", "archive", "HEAD", "src", "tests"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(work, filter="data")
    if tests == "current":
        for name in OWN_TESTS:
            if (ROOT / "tests" / name).exists():
                shutil.copy2(ROOT / "tests" / name, work / "tests" / name)
    selection = [t for t in group.tests
                 if t.startswith("-") or (work / t.split("::")[0]).exists()
                 or group.tests[group.tests.index(t) - 1] == "-k"]
    text = (ROOT / "pyproject.toml").read_text()
    config = tomllib.loads(text).get("tool", {}).get("mutmut", {})
    text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)
    config.update(source_paths=["src"], only_mutate=[f"src/{group.file}"],
                  pytest_add_cli_args_test_selection=selection)
    text += "\n[tool.mutmut]\n" + "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n"
                                          for k, v in config.items())
    (work / "pyproject.toml").write_text(text)
    # mutmut writes the mutated tree here; it must exist before Python starts, or the
    # import system caches PYTHONPATH's entry as absent and imports the unmutated package.
    (work / "mutants" / "src").mkdir(parents=True)
    return work


def run(name: str, tests: str, timeout: int) -> dict:
    group = GROUPS[name]
    work = prepare(name, group, tests)
    mutants = enumerate_mutants(group, (work / "src" / group.file).read_text())
    names = sorted(mutants, key=_order)
    env = {**os.environ, "PYTHONPATH": str(work / "mutants" / "src")}
    env.pop("CI", None)  # a mutation run is not CI: tests needing ../shared may skip
    print(f"[{name}/{tests}] {len(names)} mutants; tests: {' '.join(group.tests)}", flush=True)
    proc = subprocess.run(["timeout", str(timeout), sys.executable, "-m", "mutmut", "run",
                           *names], cwd=work, env=env, capture_output=True, text=True)
    (work / "mutmut-run.log").write_text(proc.stdout + proc.stderr)
    statuses = _statuses(work)
    result = {"group": name, "tests": tests, "file": group.file, "selection": group.tests,
              "exit": proc.returncode, "mutants": {}}
    for mutant in names:
        line, old, new = mutants[mutant]
        result["mutants"][mutant] = {"status": statuses.get(mutant, "not run"), "line": line,
                                     "old": old, "new": new}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}-{tests}.json").write_text(json.dumps(result, indent=1,
                                                              ensure_ascii=False))
    print(summary_line(result), flush=True)
    return result


def _order(name: str) -> tuple[str, int]:
    base, _, number = name.rpartition("__mutmut_")
    return base, int(number)


def _statuses(work: Path) -> dict[str, str]:
    proc = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                          cwd=work, capture_output=True, text=True)
    out = {}
    for line in proc.stdout.splitlines():
        if ": " in line:
            key, _, status = line.strip().rpartition(": ")
            out[key] = status
    return out


def score(result: dict) -> tuple[int, int, int]:
    statuses = [m["status"] for m in result["mutants"].values()]
    killed = sum(s in STATUS_KILLED for s in statuses)
    return killed, len(statuses) - killed, len(statuses)


def summary_line(result: dict) -> str:
    killed, other, total = score(result)
    pct = 100 * killed / total if total else 0
    return f"{result['group']} ({result['tests']}): {killed}/{total} killed ({pct:.0f}%)"


def report() -> str:
    rows = ["| module (functions) | tests | before | current |", "|---|---|---|---|"]
    survivors = []
    for name, group in GROUPS.items():
        cells = []
        for tests in ("before", "current"):
            path = RESULTS / f"{name}-{tests}.json"
            if not path.exists():
                cells.append("not run")
                continue
            result = json.loads(path.read_text())
            killed, _, total = score(result)
            cells.append(f"{killed}/{total} ({100 * killed / total:.0f}%)" if total else "0/0")
            if tests == "current":
                survivors += [(m, v) for m, v in result["mutants"].items()
                              if v["status"] not in STATUS_KILLED]
        funcs = ", ".join(group.nested or [f.split(SEP)[-1].removeprefix("x_")
                                           for f in group.functions])
        rows.append(f"| `{group.file}` ({funcs}) | {' '.join(group.tests)} | "
                    f"{cells[0]} | {cells[1]} |")
    lines = rows + ["", "Surviving mutants of the current run:", ""]
    lines += [f"- `{m}` ({v['status']}), line {v['line']}: `{v['old']}` → `{v['new']}`"
              for m, v in survivors] or ["- none"]
    return "\n".join(lines) + "\n"


_CLI_FILTER = "filters = TrackFilter(**{name: values.pop(name) for name in names})"

# The 14 bugs of issue 19's spot-check, as (module, original text, mutated text, the
# tests that must kill it). Applied to HEAD's src one at a time by `spot`.
SPOT = [
    ("newwave/eval/metrics.py", "return total / min(len(relevant), k)",
     "return total / len(relevant)",
     ["tests/test_metrics.py::test_average_precision_divides_by_min_of_relevant_and_k"]),
    ("newwave/eval/metrics.py", "if item in relevant) / k",
     "if item in relevant) / min(k, len(ranking))",
     ["tests/test_metrics.py::test_precision_divides_by_k_even_when_the_ranking_is_shorter"]),
    ("newwave/eval/metrics.py", "range(1, min(len(relevant), k) + 1)",
     "range(1, len(relevant) + 1)", ["tests/test_metrics.py::test_ndcg_ideal_is_cut_at_k"]),
    ("newwave/search/rank_fusion.py", "(-item[1], item[0])", "(-item[1], -item[0])",
     ["tests/test_rank_fusion.py::test_ties_break_by_ascending_track_id"]),
    ("newwave/search/rank_fusion.py", "sum(track_id in tracks for tracks in applies)",
     "sum(any(t == track_id for t, _ in r) for r in rankings)",
     ["tests/test_rank_fusion.py::test_scores_average_over_the_signals_that_apply_to_the_track"]),
    ("newwave/catalog/catalog.py", '(filters.album, ("album",))', '(filters.album, ("artist",))',
     ["tests/test_filters.py"]),
    ("newwave/catalog/catalog.py", '("" if filters.has_lyrics else "NOT ")', '""',
     ["tests/test_filters.py"]),
    ("newwave/catalog/catalog.py", '("year >= ?", filters.year_min)', '("year >= ?", None)',
     ["tests/test_filters.py"]),
    ("newwave/api/routers/search.py", "max_seconds=MAX_RECORDING_SECONDS,", "max_seconds=None,",
     ["tests/test_api.py::test_recordings_over_two_minutes_are_refused"]),
    ("newwave/api/routers/tracks.py", "if track is None or track.missing_since is not None:",
     "if track is None:", ["tests/test_api.py::test_a_track_marked_missing_is_not_served"]),
    # The CLI builds its filter from TrackFilter's fields; each bug rewrites the result.
    ("newwave/cli.py", _CLI_FILTER, _CLI_FILTER + "; filters = dataclasses.replace("
     "filters, artist=filters.album or filters.artist, album=None)",
     ["tests/test_cli_commands.py::test_every_filter_flag_reaches_the_search"]),
    ("newwave/cli.py", _CLI_FILTER, _CLI_FILTER + "; filters = dataclasses.replace("
     "filters, has_lyrics=None if filters.has_lyrics is None else True)",
     ["tests/test_cli_commands.py::test_every_filter_flag_reaches_the_search"]),
    ("newwave/cli.py", _CLI_FILTER, _CLI_FILTER + "; filters = dataclasses.replace("
     "filters, year_min=None)",
     ["tests/test_cli_commands.py::test_every_filter_flag_reaches_the_search"]),
    ("newwave/cli.py", "filters=filters))", "))",
     ["tests/test_cli_commands.py::test_similar"]),
]


def spot(tests: str, only: list[int]) -> list[tuple[int, str]]:
    """Apply each spot-check mutant to HEAD's src and run the tests meant to kill it, with
    PYTHONPATH on the mutated tree so that CLI and server subprocesses run it too."""
    outcomes = []
    for number, (file, old, new, selection) in enumerate(SPOT, start=1):
        if only and number not in only:
            continue
        work = prepare(f"spot{number}", Group(file, [], selection), tests)
        path = work / "src" / file
        text = path.read_text()
        assert text.count(old) == 1, (file, old)
        path.write_text(text.replace(old, new))
        env = {**os.environ, "PYTHONPATH": str(work / "src")}
        env.pop("CI", None)
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p",
                               "no:cacheprovider", *selection], cwd=work, env=env,
                              capture_output=True, text=True)
        (work / "pytest.log").write_text(proc.stdout + proc.stderr)
        verdict = "killed" if proc.returncode == 1 else \
            "survived" if proc.returncode == 0 else f"error (exit {proc.returncode})"
        line = f"{number:2d}. {file}: `{old}` -> `{new}`: {verdict} by {' '.join(selection)}"
        print(line, flush=True)
        outcomes.append((number, verdict))
        shutil.rmtree(work / "src")
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run")
    run_p.add_argument("groups", nargs="*", choices=[*GROUPS, []], default=[])
    run_p.add_argument("--tests", choices=["before", "current"], default="current")
    run_p.add_argument("--timeout", type=int, default=1800, help="seconds per group")
    sub.add_parser("report")
    sub.add_parser("list")
    spot_p = sub.add_parser("spot", help="the 14 spot-check mutants of issue 19")
    spot_p.add_argument("numbers", nargs="*", type=int)
    spot_p.add_argument("--tests", choices=["before", "current"], default="current")
    args = parser.parse_args()
    if args.command == "run":
        for name in args.groups or list(GROUPS):
            run(name, args.tests, args.timeout)
        print(report())
    elif args.command == "spot":
        outcomes = spot(args.tests, args.numbers)
        sys.exit(0 if all(v == "killed" for _, v in outcomes) else 1)
    elif args.command == "list":
        for name, group in GROUPS.items():
            source = (ROOT / "src" / group.file).read_text()
            print(name, len(enumerate_mutants(group, source)))
    else:
        print(report())


if __name__ == "__main__":
    main()
