"""Mutation testing of NewWave's core modules with mutmut (see docs/testing.md).

    python scripts/mutation.py run [GROUP ...] [--tests before|current] [--rev REV]
                                   [--resume] [--timeout S]
    python scripts/mutation.py report        # the markdown table of the last runs
    python scripts/mutation.py list          # the groups and their number of mutants
    python scripts/mutation.py spot [N ...]  # issue 19's 14 spot-check bugs

Each group is one module (or a few functions of it) with the test files that are meant
to guard it. A run copies ``src/`` and ``tests/`` as committed at ``REV`` (default HEAD)
into ``.mutation/<group>-<tests>/``; ``--tests current`` then adds the working tree's
test files of issue 19 (``OWN_TESTS``) that are not committed yet. It writes a
``[tool.mutmut]`` section naming that group's file and tests and runs ``mutmut run``
there on the group's mutants only. The working tree is never modified. Results land in
``.mutation/results/<group>-<tests>.json``; ``--resume`` continues an interrupted run.
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
from collections import Counter
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
    # FastAPI routes: mutmut skips decorated functions, so the copy's `@router.get(...)`
    # decorators are applied after the fact instead (see `register_routes_late`).
    routes: bool = False
    # [tool.mutmut] settings over mutmut's defaults. Groups whose tests load torch models
    # in the test process need "forkserver": a child forked from mutmut's main process
    # (after its stats run used torch) segfaults in torch. Their module fixtures (index a
    # library) are not in mutmut's per-test durations, so they get more wall time.
    mutmut: dict = field(default_factory=dict)


# For groups whose tests index a library with musicnn and MiniLM in the test process.
# mutmut's forkserver runs a mutant's tests in no particular order (its fork runner
# sorts them by duration), so a mutant that a hand-made-vector test kills in a second
# could first wait for a whole indexing fixture: the `mutation_order` plugin (written by
# `prepare`) runs the test modules cheapest first, each module's tests in file order.
HEAVY = {"process_isolation": "forkserver", "timeout_constant": 10,
         "pytest_add_cli_args": ["-p", "mutation_order"]}
# tests/test_search.py trains a fusion model: on a loaded 2-core machine it can pass
# pytest-timeout's 300 s (the stats pass then fails, or a mutant counts as killed by a
# timeout of an unaffected test). Infinite loops still end, at 1200 s.
SEARCH_TESTS = {**HEAVY, "pytest_add_cli_args": [*HEAVY["pytest_add_cli_args"],
                                                 "--timeout", "1200"]}

ORDER_PLUGIN = '''"""Runs test modules cheapest first (by mutmut's recorded durations); see
scripts/mutation.py. A module's tests keep their order and stay together."""
import json
from pathlib import Path


def pytest_collection_modifyitems(session, config, items):
    stats = Path("mutmut-stats.json")  # in mutants/, the tests' working directory
    if not stats.exists():
        return
    durations = json.loads(stats.read_text()).get("duration_by_test", {})
    cost = {}
    for item in items:
        cost[item.path] = cost.get(item.path, 0.0) + durations.get(item.nodeid, 0.0)
    items.sort(key=lambda item: cost[item.path])
'''


GROUPS: dict[str, Group] = {
    "metrics": Group("newwave/eval/metrics.py", ["*"], [
        "tests/test_eval.py::test_metrics_on_a_hand_checked_ranking",
        "tests/test_eval.py::test_evaluate_means_ranks_and_intervals",
        "tests/test_metrics.py"]),
    "rank_fusion": Group("newwave/search/rank_fusion.py", ["*"], [
        "tests/test_rank_fusion.py", "tests/test_search.py"], mutmut=SEARCH_TESTS),
    "catalog_filters": Group("newwave/catalog/catalog.py",
                             [f"x{SEP}Catalog{SEP}filter_track_ids", "x__contains_pattern"],
                             ["tests/test_filters.py", "tests/test_catalog.py",
                              "tests/test_search.py"], mutmut=SEARCH_TESTS),
    "engine_fusion_filters": Group("newwave/search/engine.py",
                                   [f"x{SEP}SearchEngine{SEP}_fuse",
                                    f"x{SEP}SearchEngine{SEP}_allowed",
                                    f"x{SEP}SearchEngine{SEP}_ranked"],
                                   ["tests/test_engine_ranking.py", "tests/test_filters.py",
                                    "tests/test_search.py"], mutmut=SEARCH_TESTS),
    # The API's routes run in the test process only through an in-process client
    # (tests/test_service.py, tests/test_api_in_process.py); tests/test_api.py talks to a
    # `newwave serve` subprocess, which mutmut cannot see (kept for the stats run only).
    "api_search_limit": Group("newwave/api/routers/search.py", ["x_search_by_audio"],
                              ["tests/test_api_in_process.py", "tests/test_service.py",
                               "tests/test_api.py"], routes=True, mutmut=HEAVY),
    "api_track_serving": Group("newwave/api/routers/tracks.py",
                               ["x_present_track", "x_audio"],
                               ["tests/test_api_in_process.py", "tests/test_service.py",
                                "tests/test_api.py"], routes=True, mutmut=HEAVY),
    "scanner_identity": Group("newwave/library/scanner.py",
                              [f"x{SEP}Scanner{SEP}_scan_files", f"x{SEP}Scanner{SEP}_scan_file",
                               f"x{SEP}Scanner{SEP}_moved_track",
                               f"x{SEP}Scanner{SEP}_mark_missing", "x__same_stats",
                               "x_hash_file"],
                              ["tests/test_scanner_identity.py", "tests/test_scanner.py"]),
}

# Test files written by issue 19 ("current" adds those not committed yet).
OWN_TESTS = ["conftest.py", "test_metrics.py", "test_eval.py", "test_rank_fusion.py",
             "test_filters.py", "test_api.py", "test_cli_commands.py", "test_cli_and_demo.py",
             "test_web.py", "test_engine_ranking.py", "test_scanner_identity.py",
             "test_api_in_process.py"]
# A timeout counts as killed (mutmut's own score does the same); a crash of the test
# process ("segfault": a signal such as SIGSEGV or SIGKILL) does not: it is more often the
# harness (see HEAVY) than the mutant, so crashed mutants are listed as not killed.
STATUS_KILLED = {"killed", "timeout", "caught by type check"}


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


def register_routes_late(source: str) -> str:
    """The same module with each route's decorators applied after its definition.

    mutmut 3 does not mutate decorated functions. ``@a(x) @b def f`` is ``def f`` then
    ``f = a(x)(b(f))``, so the decorator lines are blanked (line numbers stay those of
    the committed file) and the registrations appended at the end of the module in
    definition order (the router's route order is unchanged). Only functions whose
    decorators are all ``router.<method>(...)`` calls are rewritten.
    """
    tree = ast.parse(source)
    lines = source.splitlines()
    late = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                or not node.decorator_list or not all(
                    isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
                    and isinstance(d.func.value, ast.Name) and d.func.value.id == "router"
                    for d in node.decorator_list):
            continue
        for number in range(node.decorator_list[0].lineno, node.lineno):
            lines[number - 1] = ""
        call = node.name
        for decorator in reversed(node.decorator_list):
            call = f"({ast.get_source_segment(source, decorator)})({call})"
        late.append(f"{node.name} = {call}")
    if not late:
        return source
    return "\n".join(lines + ["", "", "# Registered after the fact for mutmut "
                               "(scripts/mutation.py: register_routes_late).", *late]) + "\n"


def prepare(name: str, group: Group, tests: str, rev: str = "HEAD") -> Path:
    work = WORK / f"{name}-{tests}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    # src and tests as committed (HEAD): a consistent tree even while someone is
    # refactoring in the working tree; `current` adds the test files of issue 19 that are
    # not committed yet. Committed ones are taken as committed: a working-tree edit of
    # them may need source changes that are not committed either (and mutants of the
    # committed source would then fail for the wrong reason).
    archive = subprocess.run(["git", "archive", rev, "src", "tests"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(work, filter="data")
    if group.routes:
        path = work / "src" / group.file
        path.write_text(register_routes_late(path.read_text()))
    if tests == "current":
        for name in OWN_TESTS:
            if (ROOT / "tests" / name).exists() and not (work / "tests" / name).exists():
                shutil.copy2(ROOT / "tests" / name, work / "tests" / name)
    selection = [t for t in group.tests
                 if t.startswith("-") or (work / t.split("::")[0]).exists()
                 or group.tests[group.tests.index(t) - 1] == "-k"]
    text = (ROOT / "pyproject.toml").read_text()
    config = tomllib.loads(text).get("tool", {}).get("mutmut", {})
    text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)
    config.update(source_paths=["src"], only_mutate=[f"src/{group.file}"],
                  pytest_add_cli_args_test_selection=selection, **group.mutmut)
    text += "\n[tool.mutmut]\n" + "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n"
                                          for k, v in config.items())
    (work / "pyproject.toml").write_text(text)
    # mutmut writes the mutated tree here; it must exist before Python starts, or the
    # import system caches PYTHONPATH's entry as absent and imports the unmutated package.
    (work / "mutants" / "src").mkdir(parents=True)
    (work / "harness").mkdir()
    (work / "harness" / "mutation_order.py").write_text(ORDER_PLUGIN)
    return work


def run(name: str, tests: str, timeout: int, rev: str = "HEAD", *,
        resume: bool = False) -> dict:
    """Mutate the group's functions and run its tests against each mutant. ``resume``:
    keep the work folder of an interrupted run and run only the mutants it has no
    verdict for (the commit and tests are those of that run)."""
    group = GROUPS[name]
    work = WORK / f"{name}-{tests}"
    if resume:
        commit = json.loads((work / "run.json").read_text())["commit"]
    else:
        work = prepare(name, group, tests, rev)
        commit = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout.strip()
        (work / "run.json").write_text(json.dumps({"commit": commit}))
    mutants = enumerate_mutants(group, (work / "src" / group.file).read_text())
    names = sorted(mutants, key=_order)
    if resume:
        done = _statuses(work)
        todo = [m for m in names if done.get(m, "not checked") == "not checked"]
    else:
        todo = names
    selection = tomllib.loads((work / "pyproject.toml").read_text())["tool"]["mutmut"][
        "pytest_add_cli_args_test_selection"]  # the group's test files that exist there
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(work / "mutants" / "src"), str(work / "harness")])}
    env.pop("CI", None)  # a mutation run is not CI: tests needing ../shared may skip
    print(f"[{name}/{tests}] {len(todo)} of {len(names)} mutants to run; tests: "
          f"{' '.join(selection)}", flush=True)
    exit_code = None
    if todo:
        proc = subprocess.run(["timeout", str(timeout), sys.executable, "-m", "mutmut", "run",
                               *todo], cwd=work, env=env, capture_output=True, text=True)
        with open(work / "mutmut-run.log", "a") as log:
            log.write(proc.stdout + proc.stderr)
        exit_code = proc.returncode
    statuses = _statuses(work)
    result = {"group": name, "tests": tests, "commit": commit, "file": group.file,
              "selection": selection, "settings": group.mutmut,
              "exit": exit_code, "mutants": {}}
    for mutant in names:
        line, old, new = mutants[mutant]
        result["mutants"][mutant] = {"status": statuses.get(mutant, "not run"), "line": line,
                                     "old": old, "new": new}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}-{tests}.json").write_text(json.dumps(result, indent=1,
                                                              ensure_ascii=False))
    print(summary_line(result), flush=True)
    if names and all(m["status"] == "segfault" for m in result["mutants"].values()):
        result["broken"] = True
        print(f"[{name}/{tests}] every mutant crashed the test process: the harness is "
              f"broken, not the mutants (see {work / 'mutmut-run.log'})", flush=True)
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
    counts = Counter(m["status"] for m in result["mutants"].values())
    detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return (f"{result['group']} ({result['tests']}): {killed}/{total} killed ({pct:.0f}%)"
            f" [{detail}]")


def report() -> str:
    """The markdown table of the last runs: killed/total per group before and current
    (with the commit measured and what the not-killed mutants were), then every mutant
    the current tests leave alive."""
    rows = ["| group: module (functions) | before | current |", "|---|---|---|"]
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
            others = Counter(m["status"] for m in result["mutants"].values()
                             if m["status"] not in STATUS_KILLED)
            detail = "".join(f", {n} {status}" for status, n in sorted(others.items()))
            cells.append((f"{killed}/{total} ({100 * killed / total:.0f}%){detail}"
                          if total else "0/0") + f" @ {result.get('commit', '?')}")
            if tests == "current":
                survivors += [(m, v) for m, v in result["mutants"].items()
                              if v["status"] not in STATUS_KILLED]
        funcs = ", ".join(f.split(SEP)[-1].removeprefix("x_") for f in group.functions)
        rows.append(f"| {name}: `{group.file}` ({funcs}) | {cells[0]} | {cells[1]} |")
    lines = rows + ["", "Mutants the current tests leave alive:", ""]
    lines += [f"- `{m.rpartition('.')[2]}` ({v['status']}), line {v['line']}: `{v['old']}` → "
              f"`{v['new']}`" for m, v in survivors] or ["- none"]
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
    run_p.add_argument("--rev", default="HEAD",
                       help="the commit whose src and tests are copied (default HEAD)")
    run_p.add_argument("--resume", action="store_true",
                       help="continue an interrupted run in its work folder")
    sub.add_parser("report")
    sub.add_parser("list")
    spot_p = sub.add_parser("spot", help="the 14 spot-check mutants of issue 19")
    spot_p.add_argument("numbers", nargs="*", type=int)
    spot_p.add_argument("--tests", choices=["before", "current"], default="current")
    args = parser.parse_args()
    if args.command == "run":
        results = [run(name, args.tests, args.timeout, args.rev, resume=args.resume)
                   for name in args.groups or list(GROUPS)]
        print(report())
        if any(result.get("broken") for result in results):
            sys.exit(1)
    elif args.command == "spot":
        outcomes = spot(args.tests, args.numbers)
        sys.exit(0 if all(v == "killed" for _, v in outcomes) else 1)
    elif args.command == "list":
        for name, group in GROUPS.items():
            source = (ROOT / "src" / group.file).read_text()
            source = register_routes_late(source) if group.routes else source
            print(name, len(enumerate_mutants(group, source)))
    else:
        print(report())


if __name__ == "__main__":
    main()
