"""Zero-shot text -> audio search through musicnn's tags.

There is no joint audio–text model offline, but musicnn predicts 100 tags that people
use to describe music. A query is embedded with the text encoder and compared with
each tag's short description; the tags it matches become weights, and a track scores
``sum(weight * tag probability)``. The tag vocabulary is therefore a shared space of
queries and tracks (100-d, inner product), usable by the same vector index as any
joint model. It has no signal outside that vocabulary: a query that matches no tag
well is reported as such (``confident=False``, zero weights) instead of ranking noise.
"""

from __future__ import annotations

import numpy as np

from newwave.models.base import ModelInfo, QueryVector, TextEncoder
from newwave.models.musicnn.model import TAGS, MusicnnAudioModel

# A plain-words description per tag (same order as TAGS: MSD, then MTT).
TAG_DESCRIPTIONS: dict[str, str] = {
    "msd:rock": "rock music", "msd:pop": "pop music", "msd:alternative": "alternative music",
    "msd:indie": "indie music", "msd:electronic": "electronic music",
    "msd:female vocalists": "songs sung by female vocalists", "msd:dance": "dance music",
    "msd:00s": "music from the 2000s", "msd:alternative rock": "alternative rock",
    "msd:jazz": "jazz music", "msd:beautiful": "beautiful music", "msd:metal": "metal music",
    "msd:chillout": "chillout music to relax", "msd:male vocalists": "songs sung by male vocalists",
    "msd:classic rock": "classic rock", "msd:soul": "soul music", "msd:indie rock": "indie rock",
    "msd:Mellow": "mellow, gentle music", "msd:electronica": "electronica",
    "msd:80s": "music from the 1980s", "msd:folk": "folk music", "msd:90s": "music from the 1990s",
    "msd:chill": "chill, relaxed music", "msd:instrumental": "instrumental music without singing",
    "msd:punk": "punk rock", "msd:oldies": "oldies, old songs", "msd:blues": "blues music",
    "msd:hard rock": "hard rock", "msd:ambient": "ambient music, atmospheric soundscapes",
    "msd:acoustic": "acoustic music", "msd:experimental": "experimental music",
    "msd:female vocalist": "a female singer", "msd:guitar": "guitar music",
    "msd:Hip-Hop": "hip-hop and rap", "msd:70s": "music from the 1970s",
    "msd:party": "party music", "msd:country": "country music",
    "msd:easy listening": "easy listening music", "msd:sexy": "sexy, sensual music",
    "msd:catchy": "catchy music", "msd:funk": "funk music", "msd:electro": "electro music",
    "msd:heavy metal": "heavy metal", "msd:Progressive rock": "progressive rock",
    "msd:60s": "music from the 1960s", "msd:rnb": "r&b, rhythm and blues",
    "msd:indie pop": "indie pop", "msd:sad": "sad, melancholic music", "msd:House": "house music, electronic dance genre",
    "msd:happy": "happy, cheerful music",
    "mtt:guitar": "guitar", "mtt:classical": "classical music", "mtt:slow": "slow tempo music",
    "mtt:techno": "techno music", "mtt:strings": "string instruments, string ensemble",
    "mtt:drums": "drums and percussion", "mtt:electronic": "electronic sounds",
    "mtt:rock": "rock", "mtt:fast": "fast tempo music", "mtt:piano": "piano",
    "mtt:ambient": "ambient", "mtt:beat": "a strong beat", "mtt:violin": "violin",
    "mtt:vocal": "vocals, singing", "mtt:synth": "synth, synthesizer", "mtt:female": "female voice",
    "mtt:indian": "indian music", "mtt:opera": "opera singing", "mtt:male": "male voice",
    "mtt:singing": "singing", "mtt:vocals": "vocals", "mtt:no vocals": "no vocals, instrumental",
    "mtt:harpsichord": "harpsichord", "mtt:loud": "loud music", "mtt:quiet": "quiet, calm music",
    "mtt:flute": "flute", "mtt:woman": "a woman singing", "mtt:male vocal": "male vocals",
    "mtt:no vocal": "without vocals", "mtt:pop": "pop", "mtt:soft": "soft, gentle music",
    "mtt:sitar": "sitar", "mtt:solo": "a solo instrument", "mtt:man": "a man singing",
    "mtt:classic": "classic music", "mtt:choir": "a choir", "mtt:voice": "a voice",
    "mtt:new age": "new age music", "mtt:dance": "dance", "mtt:male voice": "a male voice",
    "mtt:female vocal": "female vocals", "mtt:beats": "beats", "mtt:harp": "harp",
    "mtt:cello": "cello", "mtt:no voice": "no voice", "mtt:weird": "weird, strange music",
    "mtt:country": "country", "mtt:metal": "metal", "mtt:female voice": "a female voice",
    "mtt:choral": "choral music",
}

MIN_SIMILARITY = 0.4  # below this best tag match, a query is outside the vocabulary
MATCH_MARGIN = 0.12  # tags within this of the best match share the weight
TEMPERATURE = 0.05


class TagSpaceModel:
    """The text side of the musicnn tag space."""

    def __init__(self, text_encoder: TextEncoder) -> None:
        self.text_encoder = text_encoder
        missing = set(TAGS) - set(TAG_DESCRIPTIONS)
        if missing:
            raise ValueError(f"tags without a description: {sorted(missing)}")
        self._tag_vectors = text_encoder.encode([TAG_DESCRIPTIONS[tag] for tag in TAGS])

    # Stored track vectors are musicnn's tag probabilities; queries meet them there.
    info: ModelInfo = MusicnnAudioModel.tags_info
    shares_text_encoder = True

    def embed_text(self, queries: list[str]) -> list[QueryVector]:
        """Tag weights per query (``vector``: [100], summing to 1, or zeros when the
        query matches no tag); ``note`` names the matched tags."""
        return self.embed_encoded(self.text_encoder.encode(queries))

    def embed_encoded(self, query_vectors: np.ndarray) -> list[QueryVector]:
        """``embed_text`` for queries already encoded by this model's text encoder (so a
        search that needs both the text and the tag view encodes once)."""
        return [self._weights(row) for row in query_vectors @ self._tag_vectors.T]

    def _weights(self, similarity: np.ndarray) -> QueryVector:
        best = float(similarity.max())
        weights = np.zeros(len(TAGS), dtype=np.float32)
        if best < MIN_SIMILARITY:
            return QueryVector(weights, confident=False,
                               note=f"matches none of the {len(TAGS)} sound tags "
                                    f"(best similarity {best:.2f})")
        kept = np.flatnonzero(similarity >= best - MATCH_MARGIN)
        logits = (similarity[kept] - best) / TEMPERATURE
        weights[kept] = np.exp(logits) / np.exp(logits).sum()
        # MSD and MTT share some tag names ("electronic"): one entry per name in the note.
        named: dict[str, float] = {}
        for i in kept[np.argsort(-similarity[kept])]:
            name = TAGS[i].split(":", 1)[1].lower()
            named[name] = named.get(name, 0.0) + float(weights[i])
        matched = ", ".join(f"{name} {weight:.2f}" for name, weight in named.items())
        return QueryVector(weights, confident=True, note=f"tags: {matched}")
