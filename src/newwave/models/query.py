"""The query encoder: a query text becomes everything the search engine needs.

A text query meets tracks in two spaces: the text encoder's (lyrics, meaning) and the
audio–text space (sound). How a model reads text into the audio–text space is the
model's own business (CLAP has a text tower; musicnn's tag space reads the query through
the text encoder), so this module asks the audio model for its text side once and never
special-cases a model. When that text side shares the text encoder, the query is
encoded once for both signals.

Under load (a server answering many searches at once) one model call per query wastes
the CPU: ``encode`` micro-batches, so the queries that arrive while a batch is encoding
go together in the next model call, and repeated queries are answered from a small LRU
cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from newwave.models.base import QueryVector, TextQueryModel
from newwave.models.registry import ActiveModels


@dataclass(frozen=True)
class EncodedQuery:
    text: str
    meaning: np.ndarray | None  # in the text encoder's space (meets lyrics); None: not asked
    sound: QueryVector | None  # in the audio–text space (meets audio); None: not asked


Flags = tuple[bool, bool]  # (meaning, sound)


@dataclass
class _Waiting:
    text: str
    flags: Flags
    done: threading.Event = field(default_factory=threading.Event)
    result: EncodedQuery | None = None
    error: BaseException | None = None


class QueryEncoder:
    def __init__(self, models: ActiveModels, *, cache_size: int = 1024) -> None:
        self.models = models
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, Flags], EncodedQuery] = OrderedDict()
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._encoding = False  # a thread is running batches (the leader)

    @cached_property
    def sound_model(self) -> TextQueryModel:
        """The text side of the active audio–text space."""
        return self.models.audio_model.text_queries(self.models.text_encoder)

    def encode(self, query: str, *, meaning: bool = True, sound: bool = True) -> EncodedQuery:
        """One query, cached, batched with the queries other threads encode meanwhile."""
        key = (query, (meaning, sound))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            me = _Waiting(query, key[1])
            self._waiting.append(me)
            lead = not self._encoding
            self._encoding = self._encoding or lead
        if lead:
            self._lead()
        me.done.wait()
        if me.error is not None:
            raise me.error
        assert me.result is not None
        return me.result

    def encode_sounds(self, texts: list[str]) -> list[QueryVector]:
        """The sound view of several texts (a query's concepts), cached, with one model
        call for the ones not in the cache."""
        flags: Flags = (False, True)
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if (t, flags) not in self._cache))
        if missing:
            encoded = self.encode_batch(missing, meaning=False, sound=True)
            with self._lock:
                for result in encoded:
                    self._remember((result.text, flags), result)
        with self._lock:
            found = {t: self._cache.get((t, flags)) for t in texts}
        # A text evicted meanwhile by other threads' queries is encoded again.
        lost = [t for t, r in found.items() if r is None]
        if lost:
            found.update(zip(lost, self.encode_batch(lost, meaning=False, sound=True)))
        return [found[t].sound for t in texts]  # type: ignore[union-attr,misc]

    def _remember(self, key: tuple[str, Flags], result: EncodedQuery) -> None:
        """Store under the lock (the caller holds it); oldest entries go first."""
        self._cache[key] = result
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _lead(self) -> None:
        """Encode what is waiting, batch after batch, until nobody waits."""
        while True:
            with self._lock:
                batch, self._waiting = self._waiting, []
                if not batch:
                    self._encoding = False
                    return
            groups: dict[Flags, list[_Waiting]] = {}
            for waiting in batch:
                groups.setdefault(waiting.flags, []).append(waiting)
            for (meaning, sound), members in groups.items():
                try:
                    encoded = self.encode_batch([m.text for m in members], meaning=meaning,
                                                sound=sound)
                except BaseException as exc:  # every waiter gets the error, none hangs
                    for member in members:
                        member.error = exc
                        member.done.set()
                    continue
                with self._lock:
                    for member, result in zip(members, encoded):
                        self._remember((member.text, member.flags), result)
                for member, result in zip(members, encoded):
                    member.result = result
                    member.done.set()

    def encode_batch(self, queries: list[str], *, meaning: bool = True,
                     sound: bool = True) -> list[EncodedQuery]:
        """Encode several queries with one model call per space (no cache)."""
        shares = sound and self.sound_model.shares_text_encoder
        text = self.models.text_encoder.encode(queries) if meaning or shares else None
        sounds: list[QueryVector] | None = None
        if sound:
            sounds = self.sound_model.embed_encoded(text) if shares \
                else self.sound_model.embed_text(queries)
        return [EncodedQuery(query, text[i] if meaning and text is not None else None,
                             sounds[i] if sounds is not None else None)
                for i, query in enumerate(queries)]
