"""The fusion model, trained on a small synthetic-but-meaningful world, beats the
reciprocal-rank-fusion fallback there, and saves/loads exactly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from newwave.models.base import l2_normalize
from newwave.models.fusion import FusionConfig, FusionModel
from newwave.search.rank_fusion import reciprocal_rank_fusion
from newwave.train.fusion import FusionExamples, train_fusion

AUDIO_DIM, TEXT_DIM, TOPICS = 100, 64, 8


@dataclass
class World:
    """Tracks have a sound topic (5 tags each) and a lyrics topic; a query asks for
    both, and the relevant tracks are those matching both."""

    sound: np.ndarray
    lyric: np.ndarray
    audio: np.ndarray
    lyrics: np.ndarray
    has_lyrics: np.ndarray
    basis: np.ndarray


def make_world(rng: np.random.Generator, n: int = 400) -> World:
    sound, lyric = rng.integers(0, TOPICS, n), rng.integers(0, TOPICS, n)
    audio = np.clip(0.15 + 0.1 * rng.standard_normal((n, AUDIO_DIM)), 0, 1)
    for i, topic in enumerate(sound):
        audio[i, topic * 5:(topic + 1) * 5] += rng.uniform(0.2, 0.7)
    basis = l2_normalize(rng.standard_normal((TOPICS, TEXT_DIM)))
    lyrics = l2_normalize(basis[lyric] + 0.9 * l2_normalize(rng.standard_normal((n, TEXT_DIM))))
    return World(sound, lyric, audio.astype(np.float32), lyrics, rng.random(n) > 0.25, basis)


def make_queries(rng: np.random.Generator, world: World, count: int):
    targets = rng.choice(np.flatnonzero(world.has_lyrics), count)
    q_audio = np.zeros((count, AUDIO_DIM), dtype=np.float32)
    for row, track in enumerate(targets):
        tags = world.sound[track] * 5 + rng.choice(5, 2, replace=False)
        q_audio[row, tags] = 0.5
    q_text = l2_normalize(world.basis[world.lyric[targets]]
                          + 0.7 * l2_normalize(rng.standard_normal((count, TEXT_DIM))))
    return targets, q_audio, q_text


def relevant(world: World, track: int) -> set[int]:
    return set(np.flatnonzero((world.sound == world.sound[track]) &
                              (world.lyric == world.lyric[track]) & world.has_lyrics).tolist())


def mrr(rankings: list[list[int]], relevant_sets: list[set[int]]) -> float:
    total = 0.0
    for ranking, wanted in zip(rankings, relevant_sets):
        rank = next((i for i, t in enumerate(ranking, 1) if t in wanted), None)
        total += 1 / rank if rank else 0.0
    return total / len(rankings)


def test_trained_fusion_beats_rank_fusion_on_held_out_queries(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    world = make_world(rng)
    config = FusionConfig(audio_dim=AUDIO_DIM, text_dim=TEXT_DIM, audio_space="synthetic-audio",
                          text_space="synthetic-text", hidden=128, out=64)
    targets, q_audio, q_text = make_queries(rng, world, 3000)
    model, losses = train_fusion(FusionExamples(
        q_audio, q_text, world.audio[targets], world.lyrics[targets],
        world.has_lyrics[targets].astype(np.float32)), config, epochs=15, batch_size=128)
    assert losses[-1] < 0.7 * losses[0]

    test_targets, test_audio, test_text = make_queries(np.random.default_rng(1), world, 150)
    wanted = [relevant(world, t) for t in test_targets]
    with_lyrics = set(np.flatnonzero(world.has_lyrics).tolist())
    everyone = set(range(len(world.sound)))
    rrf, fused = [], []
    for qa, qt in zip(test_audio, test_text):
        sound = np.argsort(-(world.audio @ qa))
        lyric_scores = world.lyrics @ qt
        lyric = [t for t in np.argsort(-lyric_scores) if world.has_lyrics[t]]
        rrf.append([t for t, _ in reciprocal_rank_fusion(
            [[(int(t), 0.0) for t in sound], [(int(t), 0.0) for t in lyric]],
            [everyone, with_lyrics])])
        scores = model.score(qa, qt, world.audio, world.lyrics,
                             world.has_lyrics.astype(np.float32))
        fused.append(np.argsort(-scores).tolist())
    rrf_mrr, fusion_mrr = mrr(rrf, wanted), mrr(fused, wanted)
    assert fusion_mrr > rrf_mrr + 0.05, (fusion_mrr, rrf_mrr)

    path = tmp_path / "fusion.pt"
    model.save(path)
    loaded = FusionModel.load(path)
    args = (test_audio[0], test_text[0], world.audio[:5], world.lyrics[:5],
            world.has_lyrics[:5].astype(np.float32))
    assert np.allclose(loaded.score(*args), model.score(*args), atol=1e-6)
    assert loaded.config == config


def test_rank_fusion_averages_over_applicable_signals() -> None:
    sound = [(1, 0.9), (2, 0.8), (3, 0.1)]
    lyrics = [(3, 0.9), (2, 0.5)]
    fused = reciprocal_rank_fusion([sound, lyrics], [{1, 2, 3}, {2, 3}])
    # Track 1 has no lyrics: judged on sound alone, it is not outranked by tracks that
    # both signals only half-like (plain summed RRF would put it last).
    assert [t for t, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61)
    assert fused[1][1] == pytest.approx((1 / 63 + 1 / 61) / 2)
    assert fused[2][1] == pytest.approx((1 / 62 + 1 / 62) / 2)


def test_loading_something_else_fails_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-model.pt"
    bad.write_bytes(b"nonsense")
    with pytest.raises(ValueError, match="not a NewWave fusion model"):
        FusionModel.load(bad)
