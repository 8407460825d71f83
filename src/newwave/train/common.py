"""What every trainer shares: TOML configs, seeding, a JSONL run log with a PNG plot,
and atomic checkpoints that a run resumes from."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from newwave.errors import InvalidInput

ConfigT = TypeVar("ConfigT")


class TrainingDataError(InvalidInput, ValueError):
    """The training data is missing or malformed; the message names the file and the fix."""


def load_config(cls: type[ConfigT], path: Path | None, **overrides: Any) -> ConfigT:
    """A trainer's dataclass config from a TOML file (unknown keys are refused), with
    ``overrides`` (e.g. from CLI flags) on top."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise TrainingDataError(f"{path}: cannot read the training config ({exc})") from exc
    values.update({k: v for k, v in overrides.items() if v is not None})
    fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(values) - set(fields)
    if unknown:
        raise TrainingDataError(f"unknown config keys {sorted(unknown)}; known: {sorted(fields)}")
    for key, value in values.items():
        if isinstance(value, str) and fields[key].startswith("Path"):
            values[key] = Path(value)
    return cls(**values)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class RunLog:
    """Appends one JSON object per event to ``<dir>/log.jsonl`` and redraws
    ``<dir>/training.png`` (loss per step, validation metrics per epoch)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "log.jsonl"
        self.plot_path = folder / "training.png"

    def write(self, **event: Any) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event, default=float) + "\n")

    def events(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        events = self.events()
        steps = [(e["step"], e["loss"]) for e in events if e.get("kind") == "train"]
        validations = [e for e in events if e.get("kind") == "validation"]
        figure, (loss_axis, metric_axis) = plt.subplots(1, 2, figsize=(11, 4))
        if steps:
            loss_axis.plot(*zip(*steps))
        loss_axis.set(xlabel="step", ylabel="training loss", title="Loss")
        for name in sorted({k for e in validations for k in e if k not in ("kind", "epoch", "step")}):
            metric_axis.plot([e["epoch"] for e in validations], [e[name] for e in validations],
                             marker="o", label=name)
        metric_axis.set(xlabel="epoch", title="Validation")
        if validations:
            metric_axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(self.plot_path, dpi=100)
        plt.close(figure)


class Checkpoints:
    """``<dir>/last.pt``, the state a re-run resumes from (with the RNG states), written
    atomically so a crash mid-save leaves the previous checkpoint."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def save(self, state: dict[str, Any]) -> Path:
        path = self.folder / "last.pt"
        tmp = path.with_suffix(".tmp")
        torch.save({**state, "rng": {"python": random.getstate(),
                                     "numpy": np.random.get_state(),
                                     "torch": torch.get_rng_state()}}, tmp)
        os.replace(tmp, path)
        return path

    def load(self) -> dict[str, Any] | None:
        path = self.folder / "last.pt"
        if not path.exists():
            return None
        state = torch.load(path, map_location="cpu", weights_only=False)
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        return state
