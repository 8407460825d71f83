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

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

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

# Below this best tag match a concept is outside the vocabulary: 90% of 50 everyday
# non-musical words (war, kitchen, castle...) fall below it under MiniLM (median 0.38).
MIN_SIMILARITY = 0.45
# A query spreads its weight over its best tags (softmax of the similarities): one tag
# alone loses the rest of a description ("sad piano" is not only piano). A handful
# of tags at a soft temperature measured best on the dev suite (docs/evaluation.md).
TOP_TAGS = 8
TEMPERATURE = 0.07
NAME_SIMILARITY = 0.85  # a query this close to a tag's bare name says the tag itself
NOTE_MIN_WEIGHT = 0.05  # tags below this weight are not named in a note


class TagSpaceModel:
    """The text side of the musicnn tag space."""

    def __init__(self, text_encoder: TextEncoder) -> None:
        self.text_encoder = text_encoder
        missing = set(TAGS) - set(TAG_DESCRIPTIONS)
        if missing:
            raise ValueError(f"tags without a description: {sorted(missing)}")
        # A tag is known by its description and by its bare name: a one-word concept
        # ("sad") is closer to the name than to the phrase "sad, melancholic music".
        # Names only count when (nearly) said: near a short name, everyday words land by
        # accident ("home" is 0.80 from "house").
        self._tag_vectors = text_encoder.encode([TAG_DESCRIPTIONS[tag] for tag in TAGS])
        self._name_vectors = text_encoder.encode([tag.split(":", 1)[1].lower() for tag in TAGS])

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
        by_name = query_vectors @ self._name_vectors.T
        similarity = np.maximum(query_vectors @ self._tag_vectors.T,
                                np.where(by_name >= NAME_SIMILARITY, by_name, 0.0))
        return [self._weights(row) for row in similarity]

    def calibrate(self, tracks: np.ndarray) -> np.ndarray:
        """Track tag probabilities as comparable evidence (see :func:`calibrate_tags`)."""
        return calibrate_tags(tracks)

    def _weights(self, similarity: np.ndarray) -> QueryVector:
        best = float(similarity.max())
        weights = np.zeros(len(TAGS), dtype=np.float32)
        if best < MIN_SIMILARITY:
            return QueryVector(weights, confident=False,
                               note=f"matches none of the {len(TAGS)} sound tags "
                                    f"(best similarity {best:.2f})")
        kept = np.argsort(-similarity)[:TOP_TAGS]
        logits = (similarity[kept] - best) / TEMPERATURE
        weights[kept] = np.exp(logits) / np.exp(logits).sum()
        # MSD and MTT share some tag names ("electronic"): one entry per name in the note.
        named: dict[str, float] = {}
        for i in kept:
            name = TAGS[i].split(":", 1)[1].lower()
            named[name] = named.get(name, 0.0) + float(weights[i])
        matched = ", ".join(f"{name} {weight:.2f}" for name, weight in named.items()
                            if weight >= NOTE_MIN_WEIGHT)
        return QueryVector(weights, confident=True, note=f"tags: {matched}", strength=best)


# Calibration. musicnn's tags have very different base rates: "rock" is above 0.3 on
# most tracks, "harpsichord" rarely above 0.01. Raw probabilities let the common tags
# drown the rare ones, so each tag's log-probability is standardised against a
# reference distribution: the library itself, shrunk towards a built-in prior while the
# library is small (PRIOR_TRACKS tracks' worth of prior evidence).
PRIOR_TRACKS = 50
LOG_FLOOR = 1e-4


def calibrate_tags(tracks: np.ndarray, prior: TagPrior | None = None) -> np.ndarray:
    """Per-tag z-scores of log-probabilities, ``[n, 100]``."""
    logs = np.log(np.maximum(tracks.astype(np.float64), LOG_FLOOR))
    prior = prior or TagPrior.builtin()
    n = len(logs)
    mean = (logs.sum(axis=0) + PRIOR_TRACKS * prior.mean) / (n + PRIOR_TRACKS)
    second = ((logs ** 2).sum(axis=0) + PRIOR_TRACKS * (prior.std ** 2 + prior.mean ** 2)) \
        / (n + PRIOR_TRACKS)
    std = np.sqrt(np.maximum(second - mean ** 2, 1e-6))
    return ((logs - mean) / std).astype(np.float32)


@dataclass(frozen=True)
class TagPrior:
    """Mean and spread of each tag's log-probability on a reference collection."""

    mean: np.ndarray  # [100]
    std: np.ndarray  # [100]

    @classmethod
    @cache
    def builtin(cls) -> TagPrior:
        """Measured by ``scripts/tag_prior.py`` on the free-licensed music of Debian's
        archive (see the file's ``source``), shipped with the package."""
        data = json.loads(PRIOR_FILE.read_text(encoding="utf-8"))
        if data["tags"] != TAGS:
            raise ValueError(f"{PRIOR_FILE} lists other tags; rerun scripts/tag_prior.py")
        return cls(np.array(data["mean"], dtype=np.float64), np.array(data["std"], dtype=np.float64))

    @classmethod
    def measure(cls, tracks: np.ndarray) -> TagPrior:
        logs = np.log(np.maximum(tracks.astype(np.float64), LOG_FLOOR))
        return cls(logs.mean(axis=0), logs.std(axis=0))


PRIOR_FILE = Path(__file__).parent / "musicnn" / "tag_prior.json"
