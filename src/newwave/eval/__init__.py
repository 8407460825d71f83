"""Evaluation: standard retrieval metrics on standard benchmark formats, through the
same engine users get, beside random and BM25 baselines."""

from newwave.eval.datasets import (
    DatasetError,
    EvalDataset,
    EvalItem,
    EvalQuery,
    load_manifest,
    load_musiccaps,
    load_song_describer,
)
from newwave.eval.metrics import Estimate, evaluate
from newwave.eval.report import markdown_table, write_report
from newwave.eval.runner import EvalConfig, EvalRun, model_configs, run_eval

__all__ = ["DatasetError", "Estimate", "EvalConfig", "EvalDataset", "EvalItem", "EvalQuery",
           "EvalRun", "evaluate", "load_manifest", "load_musiccaps", "load_song_describer",
           "markdown_table", "model_configs", "run_eval", "write_report"]
