"""Writing an evaluation run: JSON (everything), Markdown (the table), PNG (the curves)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from newwave.eval.runner import EvalRun

TABLE_METRICS = ["MRR", "HitRate@1", "HitRate@5", "HitRate@10", "RecallFraction@10",
                 "Precision@10", "mAP@10", "nDCG@10", "MedianRank"]


def markdown_table(run: EvalRun) -> str:
    header = "| configuration | " + " | ".join(TABLE_METRICS) + " |"
    lines = [header, "|" + "---|" * (len(TABLE_METRICS) + 1)]
    for result in run.results:
        cells = []
        for name in TABLE_METRICS:
            value = result.metrics[name]
            digits = 1 if name == "MedianRank" else 3
            cells.append(f"{value.mean:.{digits}f} [{value.low:.{digits}f}, {value.high:.{digits}f}]")
        lines.append(f"| {result.config.name} | " + " | ".join(cells) + " |")
    dataset = run.dataset
    notes = "".join(f"\n- {note}" for note in dataset.notes)
    return (f"Dataset `{dataset.name}` (sha256 {dataset.source_sha256[:12]}): "
            f"{len(dataset.queries)} queries over {run.items_indexed} indexed items; "
            f"mean [95% bootstrap CI].{notes}\n\n" + "\n".join(lines) + "\n")


def write_report(run: EvalRun, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "markdown": out_dir / "results.md",
             "plot": out_dir / "results.png"}
    paths["json"].write_text(json.dumps(run.to_json(), indent=2), encoding="utf-8")
    paths["markdown"].write_text(markdown_table(run), encoding="utf-8")
    _plot(run, paths["plot"])
    return paths


def _plot(run: EvalRun, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_items = max(run.items_indexed, 1)
    ks = np.arange(1, n_items + 1)
    figure, (curves, histogram) = plt.subplots(1, 2, figsize=(12, 4.5))
    for result in run.results:
        ranks = np.array(list(result.ranks.values()))
        curves.plot(ks, [(ranks <= k).mean() for k in ks], label=result.config.name)
        histogram.hist(np.minimum(ranks, n_items + 1), bins=min(30, n_items + 1), alpha=0.45,
                       label=result.config.name)
    curves.set(xlabel="K", ylabel="HitRate@K (Recall@K)", title="Recall@K", ylim=(0, 1.02),
               xscale="log" if n_items > 50 else "linear")
    curves.grid(alpha=0.3)
    curves.legend(fontsize=7)
    histogram.set(xlabel="rank of the first relevant item", ylabel="queries",
                  title="Rank histogram")
    figure.suptitle(f"{run.dataset.name}: {len(run.dataset.queries)} queries, "
                    f"{run.items_indexed} items")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
