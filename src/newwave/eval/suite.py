"""A suite of benchmarks in one run: every manifest under a folder, one table.

A folder of dev sets (``<set>/manifest.jsonl`` with its audio beside it) is run set by
set through :func:`run_eval` with the same configurations; the table shows each set and
the macro-average over sets (every set counts alike, however many queries it has), each
with a 95% bootstrap interval. The macro interval resamples every set's queries
independently and averages, so it reflects the uncertainty of every set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from newwave.eval.datasets import DatasetError, EvalDataset, load_manifest
from newwave.eval.metrics import Estimate
from newwave.eval.runner import EvalConfig, EvalRun

SUITE_METRICS = ("MRR", "HitRate@1", "HitRate@10")
LABELS = {"MRR": "MRR", "HitRate@1": "R@1", "HitRate@10": "R@10"}


def load_suite(folder: Path) -> list[EvalDataset]:
    """Every ``*/manifest.jsonl`` under ``folder`` (audio paths relative to its folder)."""
    manifests = sorted(folder.glob("*/manifest.jsonl"))
    if not manifests:
        raise DatasetError(f"{folder}: no <set>/manifest.jsonl found; a suite is a folder of "
                           "benchmark folders, each with a manifest.jsonl and its audio")
    return [load_manifest(path, path.parent) for path in manifests]


@dataclass
class SuiteResult:
    runs: list[EvalRun]

    @property
    def configs(self) -> list[EvalConfig]:
        return [r.config for r in self.runs[0].results]

    def per_query(self, run: EvalRun, config: EvalConfig, metric: str) -> np.ndarray:
        """One value per query of ``metric`` (an unanswered query counts 0)."""
        result = next(r for r in run.results if r.config == config)
        return np.asarray(result.per_query[metric], dtype=np.float64)

    def estimate(self, run: EvalRun, config: EvalConfig, metric: str) -> Estimate:
        result = next(r for r in run.results if r.config == config)
        return result.metrics[metric]

    def macro(self, config: EvalConfig, metric: str, *, resamples: int = 1000,
              seed: int = 0) -> Estimate:
        values = [self.per_query(run, config, metric) for run in self.runs]
        rng = np.random.default_rng(seed)
        samples = np.mean([v[rng.integers(0, len(v), (resamples, len(v)))].mean(axis=1)
                           for v in values], axis=0)
        return Estimate(float(np.mean([v.mean() for v in values])),
                        float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5)))

    def rows(self) -> list[tuple[str, str, dict[str, Estimate]]]:
        """(configuration, set, metric -> estimate): every set, then the macro-average."""
        rows = []
        for config in self.configs:
            for run in self.runs:
                rows.append((config.name, run.dataset.name,
                             {m: self.estimate(run, config, m) for m in SUITE_METRICS}))
            rows.append((config.name, "macro", {m: self.macro(config, m) for m in SUITE_METRICS}))
        return rows

    def markdown(self) -> str:
        sets = ", ".join(f"{r.dataset.name} ({len(r.dataset.queries)} queries, "
                         f"{r.items_indexed} items)" for r in self.runs)
        lines = [f"Sets: {sets}. Mean [95% bootstrap CI]; macro = the mean over sets.", "",
                 "| configuration | set | " + " | ".join(LABELS[m] for m in SUITE_METRICS) + " |",
                 "|---|---|" + "---|" * len(SUITE_METRICS)]
        for name, dataset, estimates in self.rows():
            cells = [f"{e.mean:.3f} [{e.low:.3f}, {e.high:.3f}]" for e in estimates.values()]
            bold = "**" if dataset == "macro" else ""
            lines.append(f"| {name} | {bold}{dataset}{bold} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def write(self, out_dir: Path) -> dict[str, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {"json": out_dir / "suite.json", "markdown": out_dir / "suite.md"}
        paths["json"].write_text(json.dumps({
            "sets": [run.to_json() for run in self.runs],
            "table": [{"config": name, "set": dataset,
                       "metrics": {m: vars(e) for m, e in estimates.items()}}
                      for name, dataset, estimates in self.rows()]}, indent=2), encoding="utf-8")
        paths["markdown"].write_text(self.markdown(), encoding="utf-8")
        return paths
