"""Running a benchmark through the real engine.

The benchmark's audio becomes a throw-away NewWave library (links to the files, lyrics
as sidecars), scanned, embedded and indexed exactly as a user's library is; every
query then goes through the :class:`NewWave` service, so the figures are the quality a user
gets. Random and BM25 rankings over the same catalog run alongside as floors.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from newwave import __version__
from newwave.catalog import Catalog, Track
from newwave.config import Settings
from newwave.eval.baselines import random_ranking
from newwave.eval.datasets import EvalDataset
from newwave.eval.metrics import PER_QUERY_METRICS, Estimate, evaluate
from newwave.search.engine import MODES
from newwave.search.keywords import BM25
from newwave.search.sound import SoundOptions
from newwave.service import NewWave

BASELINES = ("random", "bm25")
Log = Callable[[str], None]

# Each part of the sound scoring switched on in turn (docs/evaluation.md): the first row
# reads a whole query as one blurred concept on raw tag probabilities, the last is the
# default engine.
ABLATION: dict[str, SoundOptions] = {
    "whole query": SoundOptions(calibrate=False, concepts=False, negation=False,
                                descriptors=False),
    "+ concepts": SoundOptions(calibrate=False, negation=False, descriptors=False),
    "+ negation": SoundOptions(calibrate=False, descriptors=False),
    "+ descriptors": SoundOptions(calibrate=False),
    "+ calibrated tags": SoundOptions(),
}
DEFAULT_SOUND = next(name for name, options in ABLATION.items() if options == SoundOptions())


@dataclass(frozen=True)
class EvalConfig:
    mode: str  # a search mode, or a baseline
    audio_model: str = ""
    text_model: str = ""
    sound: str = DEFAULT_SOUND  # a step of ABLATION

    @property
    def name(self) -> str:
        if self.mode in BASELINES:
            return f"{self.mode} (baseline)"
        variant = "" if self.sound == DEFAULT_SOUND else f" [{self.sound}]"
        return f"{self.mode} · {self.audio_model} + {self.text_model}{variant}"


@dataclass
class ConfigResult:
    config: EvalConfig
    metrics: dict[str, Estimate]
    ranks: dict[str, int]  # query id -> first relevant rank
    models: dict[str, str] = field(default_factory=dict)
    per_query: dict[str, list[float]] = field(default_factory=dict)  # metric -> values


@dataclass
class EvalRun:
    dataset: EvalDataset
    results: list[ConfigResult]
    items_indexed: int
    created: str

    def to_json(self) -> dict:
        return {
            "newwave": __version__, "created": self.created,
            "dataset": {"name": self.dataset.name, "sha256": self.dataset.source_sha256,
                        "items": len(self.dataset.items), "items_indexed": self.items_indexed,
                        "queries": len(self.dataset.queries),
                        "missing_audio": self.dataset.missing_audio,
                        "dropped_queries": self.dataset.dropped_queries,
                        "notes": self.dataset.notes},
            "results": [{"config": asdict(r.config), "name": r.config.name, "models": r.models,
                         "metrics": {k: asdict(v) for k, v in r.metrics.items()},
                         "ranks": r.ranks} for r in self.results],
        }


def model_configs(modes: list[str], audio_models: list[str], text_model: str, *,
                  ablation: bool = False) -> list[EvalConfig]:
    """Each mode with each audio model, then the baselines; ``ablation`` adds the audio
    mode with each step of :data:`ABLATION` before them."""
    configs = [EvalConfig(mode, audio, text_model) for audio in audio_models for mode in modes]
    for config in configs:
        if config.mode not in MODES:
            raise ValueError(f"unknown mode {config.mode!r}; use {', '.join(MODES)}")
    if ablation:
        steps = [EvalConfig("audio", audio, text_model, step) for audio in audio_models
                 for step in ABLATION if step != DEFAULT_SOUND]
        configs = steps + configs
    return configs + [EvalConfig(b) for b in BASELINES]


def run_eval(dataset: EvalDataset, configs: list[EvalConfig], settings: Settings, *,
             log: Log = print, work_dir: Path | None = None,
             cache_dir: Path | None = None) -> EvalRun:
    """``cache_dir``: keep the indexed library there (per dataset and models), so the
    next run on the same data only runs the queries."""
    if cache_dir is not None:
        folder = cache_dir / f"{dataset.name}-{dataset.source_sha256[:12]}"
        folder.mkdir(parents=True, exist_ok=True)
        return _run_in(folder, dataset, configs, settings, log)
    with tempfile.TemporaryDirectory(prefix="newwave-eval-", dir=work_dir) as tmp:
        return _run_in(Path(tmp), dataset, configs, settings, log)


def _run_in(folder: Path, dataset: EvalDataset, configs: list[EvalConfig], settings: Settings,
            log: Log) -> EvalRun:
    results: dict[EvalConfig, ConfigResult] = {}
    indexed = 0
    library = folder / "library"
    item_of_file = _link_library(dataset, library)
    groups: dict[tuple[str, str], list[EvalConfig]] = {}
    for config in configs:
        if config.mode not in BASELINES:
            groups.setdefault((config.audio_model, config.text_model), []).append(config)
    for (audio_model, text_model), group in groups.items():
        models = "".join(c if c.isalnum() else "_" for c in f"{audio_model}-{text_model}")
        run_settings = replace(settings, data_dir=folder / f"data-{models}",
                               audio_model=audio_model, text_model=text_model)
        log(f"indexing {len(dataset.items)} items with {audio_model} + {text_model}")
        indexed = _run_models(dataset, group, run_settings, library, item_of_file,
                              results, log)
    baselines = [c for c in configs if c.mode in BASELINES]
    with NewWave.open(replace(settings, data_dir=folder / "data-baselines")) as service:
        service.update([library], embed=False)
        tracks = service.catalog.tracks()
        documents = [_document(service.catalog, t) for t in tracks]
    items = [item_of_file[Path(t.path).stem] for t in tracks]
    for config in baselines:
        results[config] = _score(config, dataset, _baseline_rankings(
            config.mode, dataset, items, documents), {})
    return EvalRun(dataset, [results[c] for c in configs], indexed or len(dataset.items),
                   dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))


def _run_models(dataset: EvalDataset, configs: list[EvalConfig], settings: Settings,
                library: Path, item_of_file: dict[str, str],
                results: dict[EvalConfig, ConfigResult], log: Log) -> int:
    """Index the library with one pair of models and run each config's queries through
    the engine; return how many items are in the index."""
    with NewWave.open(settings) as service:
        service.update([library])
        item_of_track = {t.id: item_of_file[Path(t.path).stem] for t in service.catalog.tracks()}
        for config in configs:
            log(f"running {len(dataset.queries)} queries: {config.name}")
            engine = service.engine.with_sound_options(ABLATION[config.sound])
            rankings = [[item_of_track[h.track.id] for h in engine.search(
                q.text, config.mode, limit=min(1000, len(item_of_track))).hits]
                for q in dataset.queries]
            results[config] = _score(config, dataset, rankings, {
                "audio": str(service.models.space_info("audio-text")),
                "text": str(service.models.space_info("lyrics"))})
    return len(item_of_track)


def _baseline_rankings(mode: str, dataset: EvalDataset, items: list[str],
                       documents: list[str]) -> list[list[str]]:
    """Random (seeded per query) or BM25 over the tracks' tags and lyrics."""
    if mode == "random":
        return [[items[i] for i in random_ranking(len(items), seed=n)]
                for n, _ in enumerate(dataset.queries)]
    bm25 = BM25(documents)
    return [[items[i] for i in bm25.rank(q.text, seed=n)] for n, q in enumerate(dataset.queries)]


def _document(catalog: Catalog, track: Track) -> str:
    """What keyword search sees of a track: its tags and lyrics."""
    lyrics = catalog.lyrics(track.id)
    return " ".join(filter(None, [track.title, track.artist, track.album, track.genre,
                                  track.comment, lyrics.text if lyrics else None]))


def _score(config: EvalConfig, dataset: EvalDataset, rankings: list[list[str]],
           models: dict[str, str]) -> ConfigResult:
    relevants = [set(q.relevant) for q in dataset.queries]
    metrics, ranks = evaluate(rankings, relevants, items=len(dataset.items))
    per_query = {name: [PER_QUERY_METRICS[name](r, rel) for r, rel in zip(rankings, relevants)]
                 for name in ("MRR", "HitRate@1", "HitRate@10")}
    return ConfigResult(config, metrics, {q.id: r for q, r in zip(dataset.queries, ranks)},
                        models, per_query)


def _link_library(dataset: EvalDataset, library: Path) -> dict[str, str]:
    """A folder of links to the benchmark's audio (lyrics as ``.txt`` sidecars);
    returns file stem -> item id. An existing folder (a cached run) is filled again:
    the same links, so its files are unchanged to the scanner."""
    library.mkdir(parents=True, exist_ok=True)
    item_of_file = {}
    for number, item in enumerate(dataset.items.values()):
        stem = f"item{number:06d}"
        link = library / f"{stem}{item.audio.suffix.lower()}"
        if not link.is_symlink():
            os.symlink(item.audio.resolve(), link)
        if item.lyrics:
            (library / f"{stem}.txt").write_text(item.lyrics, encoding="utf-8")
        item_of_file[stem] = item.id
    return item_of_file
