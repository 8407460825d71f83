"""The query encoder: a query text becomes everything the search engine needs.

A text query meets tracks in two spaces: the text encoder's (lyrics, meaning) and the
audio–text space (sound). How a model reads text into the audio–text space is the
model's own business (CLAP has a text tower; musicnn's tag space reads the query through
the text encoder), so this module asks the audio model for its text side once and never
special-cases a model. When that text side shares the text encoder, the query is
encoded once for both signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from newwave.models.base import QueryVector, TextQueryModel
from newwave.models.registry import ActiveModels


@dataclass(frozen=True)
class EncodedQuery:
    text: str
    meaning: np.ndarray | None  # in the text encoder's space (meets lyrics); None: not asked
    sound: QueryVector | None  # in the audio–text space (meets audio); None: not asked


class QueryEncoder:
    def __init__(self, models: ActiveModels) -> None:
        self.models = models

    @cached_property
    def sound_model(self) -> TextQueryModel:
        """The text side of the active audio–text space."""
        return self.models.audio_model.text_queries(self.models.text_encoder)

    def encode(self, query: str, *, meaning: bool = True, sound: bool = True) -> EncodedQuery:
        return self.encode_batch([query], meaning=meaning, sound=sound)[0]

    def encode_batch(self, queries: list[str], *, meaning: bool = True,
                     sound: bool = True) -> list[EncodedQuery]:
        """Encode several queries with one model call per space."""
        shares = sound and self.sound_model.shares_text_encoder
        text = self.models.text_encoder.encode(queries) if meaning or shares else None
        sounds: list[QueryVector] | None = None
        if sound:
            sounds = self.sound_model.embed_encoded(text) if shares \
                else self.sound_model.embed_text(queries)
        return [EncodedQuery(query, text[i] if meaning and text is not None else None,
                             sounds[i] if sounds is not None else None)
                for i, query in enumerate(queries)]
