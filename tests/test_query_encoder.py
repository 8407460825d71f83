"""The query encoder: one model call for the queries that wait together, and a cache."""

from __future__ import annotations

import threading

import numpy as np

from newwave.config import Settings
from newwave.models.query import QueryEncoder
from newwave.models.registry import ActiveModels


class CountingEncoder:
    """The real MiniLM encoder, counting its calls and the texts of each."""

    def __init__(self, encoder) -> None:
        self.encoder, self.calls = encoder, []
        self.info = encoder.info

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self.encoder.encode(texts)


def make_encoder(tmp_path, text_encoder, musicnn) -> tuple[QueryEncoder, CountingEncoder]:
    models = ActiveModels(Settings.load(data_dir=tmp_path))
    counting = CountingEncoder(text_encoder)
    models.text_encoder, models.audio_model = counting, musicnn
    encoder = QueryEncoder(models)
    encoder.sound_model  # noqa: B018 (the tag space encodes its tag names once: not counted)
    counting.calls.clear()
    return encoder, counting


def test_concurrent_queries_share_model_calls_and_match_one_by_one(tmp_path, text_encoder,
                                                                   musicnn) -> None:
    encoder, counting = make_encoder(tmp_path, text_encoder, musicnn)
    queries = [f"calm piano number {i}" for i in range(24)]
    results: dict[str, object] = {}
    start = threading.Barrier(len(queries))

    def ask(query: str) -> None:
        start.wait()
        results[query] = encoder.encode(query)

    threads = [threading.Thread(target=ask, args=(q,)) for q in queries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Every query was encoded exactly once, in fewer model calls than queries.
    assert sorted(t for call in counting.calls for t in call) == sorted(queries)
    assert len(counting.calls) < len(queries)
    alone = encoder.encode_batch(queries)
    for query, single in zip(queries, alone):
        got = results[query]
        assert np.allclose(got.meaning, single.meaning, atol=1e-5)
        assert np.allclose(got.sound.vector, single.sound.vector, atol=1e-5)
        assert got.sound.note == single.sound.note


def test_repeated_queries_come_from_the_cache(tmp_path, text_encoder, musicnn) -> None:
    encoder, counting = make_encoder(tmp_path, text_encoder, musicnn)
    encoder.cache_size = 2
    first = encoder.encode("solo piano")
    assert encoder.encode("solo piano") is first and len(counting.calls) == 1
    # Other flags are another entry: a lyrics-only query needs no sound vector.
    lyrics_only = encoder.encode("solo piano", sound=False)
    assert lyrics_only.sound is None and len(counting.calls) == 2
    encoder.encode("techno")  # evicts the least recently used entry ("solo piano", both)
    encoder.encode("solo piano")
    assert len(counting.calls) == 4
