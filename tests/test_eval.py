from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from conftest import SHARED_DATA, make_audio, require_shared
from newwave.eval import (DatasetError, load_manifest, load_musiccaps, load_song_describer,
                          model_configs, run_eval, write_report)
from newwave.search.keywords import BM25
from newwave.library import AUDIO_EXTENSIONS
from newwave.eval.metrics import (average_precision_at, bootstrap_ci, evaluate, hit_rate_at,
                                  ndcg_at, precision_at, recall_fraction_at, reciprocal_rank)

SHARED = SHARED_DATA


@pytest.fixture
def needs_shared_data() -> Path:
    return require_shared()  # skips locally without ../shared; fails in CI


needs_shared = pytest.mark.usefixtures("needs_shared_data")


# -- metrics, against values worked out by hand ------------------------------------------

def test_metrics_on_a_hand_checked_ranking() -> None:
    ranking = ["a", "b", "c", "d", "e"]
    relevant = {"b", "d", "z"}  # z is never retrieved
    assert reciprocal_rank(ranking, relevant) == 0.5
    assert hit_rate_at(ranking, relevant, 1) == 0 and hit_rate_at(ranking, relevant, 2) == 1
    assert recall_fraction_at(ranking, relevant, 5) == pytest.approx(2 / 3)
    assert precision_at(ranking, relevant, 5) == pytest.approx(2 / 5)
    # AP@5 = (P@2 + P@4) / min(3, 5) = (1/2 + 2/4) / 3
    assert average_precision_at(ranking, relevant, 5) == pytest.approx(1 / 3)
    # DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3) + 1/log2(4)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    assert ndcg_at(ranking, relevant, 5) == pytest.approx(dcg / (1 + 1 / math.log2(3) + 0.5))
    assert reciprocal_rank(ranking, {"q"}) == 0 and ndcg_at(ranking, {"q"}, 5) == 0


def test_evaluate_means_ranks_and_intervals() -> None:
    rankings = [["a", "b", "c"], ["c", "a", "b"], ["b", "c", "a"]]
    relevants = [{"a"}, {"a"}, {"x"}]
    metrics, ranks = evaluate(rankings, relevants)
    assert ranks == [1, 2, 4]  # no relevant item: len(ranking) + 1
    assert metrics["MRR"].mean == pytest.approx((1 + 0.5 + 0) / 3)
    assert metrics["HitRate@1"].mean == pytest.approx(1 / 3)
    assert metrics["MeanRank"].mean == pytest.approx(7 / 3)
    assert metrics["MedianRank"].mean == 2
    assert metrics["MRR"].low <= metrics["MRR"].mean <= metrics["MRR"].high
    assert bootstrap_ci([0.5] * 10) .low == 0.5
    with pytest.raises(ValueError):
        evaluate(rankings, relevants[:2])


def test_bm25_prefers_rare_matching_terms() -> None:
    bm25 = BM25(["calm piano music", "loud techno music", "music music music", "jazz"])
    assert bm25.rank("piano music")[0] == 0
    assert bm25.rank("techno")[0] == 1
    assert bm25.scores("nothing matches")[0] == 0


# -- loaders, on the real file formats ---------------------------------------------------

@needs_shared
def test_manifest_groups_relevant_clips_per_query() -> None:
    root = SHARED / "eval" / "mustango"
    dataset = load_manifest(root / "manifest.jsonl", root)
    assert (dataset.name, len(dataset.items), len(dataset.queries)) == ("mustango", 43, 18)
    assert sorted(len(q.relevant) for q in dataset.queries)[-5:] == [6] * 5
    assert dataset.missing_audio == 0 and dataset.notes == []


def test_manifest_missing_audio_is_counted_and_reported(tmp_path: Path) -> None:
    make_audio(tmp_path / "a.wav", seconds=1)
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(row) for row in [
        {"query": "q one", "audio": "a.wav", "lyrics": "la la"},
        {"query": "q one", "audio": "gone.wav"},
        {"query": "q two", "audios": ["gone2.wav"]}]))
    dataset = load_manifest(tmp_path / "m.jsonl", tmp_path)
    assert dataset.missing_audio == 2 and dataset.dropped_queries == 1
    assert [q.relevant for q in dataset.queries] == [frozenset({"a.wav"})]
    assert dataset.items["a.wav"].lyrics == "la la"
    assert any("1 queries dropped" in note for note in dataset.notes)
    (tmp_path / "bad.jsonl").write_text('{"text": "no query key"}\n')
    with pytest.raises(DatasetError, match="bad.jsonl:1"):
        load_manifest(tmp_path / "bad.jsonl", tmp_path)


@needs_shared
def test_song_describer_csv_with_generated_stand_in_audio(tmp_path: Path) -> None:
    source = SHARED / "captions" / "song_describer.csv"
    with open(source, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["is_valid_subset"] == "True"]
    present = {rows[0]["track_id"]: rows[0]["path"], rows[5]["track_id"]: rows[5]["path"]}
    for path in present.values():
        make_audio(tmp_path / path, seconds=1)  # the real relative layout NN/<id>.mp3
    dataset = load_song_describer(source, tmp_path)
    assert set(dataset.items) == set(present)
    expected = sum(1 for r in rows if r["track_id"] in present)
    assert len(dataset.queries) == expected
    assert dataset.dropped_queries == len(rows) - expected
    assert dataset.missing_audio == len({r["track_id"] for r in rows}) - len(present)
    everything = load_song_describer(source, tmp_path, valid_only=False)
    assert len(everything.queries) >= len(dataset.queries)
    with pytest.raises(DatasetError, match="no query has its audio"):
        load_song_describer(source, tmp_path / "empty")


@needs_shared
def test_musiccaps_csv_with_generated_stand_in_audio(tmp_path: Path) -> None:
    source = SHARED / "captions" / "musiccaps-public.csv"
    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:3]
    make_audio(tmp_path / f"{rows[0]['ytid']}_{rows[0]['start_s']}.wav", seconds=1)
    make_audio(tmp_path / "sub" / f"{rows[1]['ytid']}.flac", seconds=1)
    dataset = load_musiccaps(source, tmp_path)
    assert len(dataset.queries) == 2 and dataset.missing_audio > 5000
    assert dataset.queries[0].text == rows[0]["caption"].strip()
    (tmp_path / "wrong.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="missing columns"):
        load_musiccaps(tmp_path / "wrong.csv", tmp_path)


# -- the runner, end to end ------------------------------------------------------------------

def test_runner_end_to_end_through_the_engine(tmp_path: Path, synthetic_library_template: Path,
                                              text_encoder, musicnn, monkeypatch) -> None:
    from newwave.config import Settings
    from newwave.demo.synth import PIECES
    from newwave.models import registry

    # The session's loaded models stand in for loading them again (same classes).
    monkeypatch.setattr(registry.ActiveModels, "text_encoder", text_encoder)
    monkeypatch.setattr(registry.ActiveModels, "audio_model", musicnn)
    audio_root = tmp_path / "audio"
    shutil.copytree(synthetic_library_template, audio_root)
    rows = []
    for piece in PIECES:
        audio = next(p for p in audio_root.rglob(f"* {piece.title}.*")
                     if p.suffix in AUDIO_EXTENSIONS)
        rows.append({"query": piece.description, "audio": str(audio.relative_to(audio_root))})
    (tmp_path / "bench.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    dataset = load_manifest(tmp_path / "bench.jsonl", audio_root)
    configs = model_configs(["audio", "combined"], ["musicnn"], "all-MiniLM-L6-v2")
    run = run_eval(dataset, configs, Settings.load(data_dir=tmp_path / "data"),
                   log=lambda _: None)
    names = [r.config.name for r in run.results]
    assert names == ["audio · musicnn + all-MiniLM-L6-v2",
                     "combined · musicnn + all-MiniLM-L6-v2", "random (baseline)",
                     "bm25 (baseline)"]
    audio = run.results[0].metrics
    assert audio["MRR"].mean > run.results[2].metrics["MRR"].mean
    assert audio["HitRate@5"].mean >= 0.8
    paths = write_report(run, tmp_path / "out")
    saved = json.loads(paths["json"].read_text())
    assert saved["dataset"]["queries"] == 6 and saved["dataset"]["sha256"] == dataset.source_sha256
    assert set(saved["results"][0]["ranks"]) == {q.id for q in dataset.queries}
    assert saved["results"][0]["models"]["audio"].startswith("musicnn-tags")
    assert "| audio · musicnn" in paths["markdown"].read_text()
    assert paths["plot"].read_bytes().startswith(b"\x89PNG")
