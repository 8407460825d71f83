"""Reading a description as the concepts it asks for.

"sad piano, no drums, around 90 bpm" asks for three things at once: a mood, an
instrument, the absence of another, and a tempo. Scored as one blurred vector, the
strongest concept wins and the others are lost ("sad piano" used to mean "piano").
This module only reads text, it knows no model: it cuts the query into clauses (commas,
"and", "with", ...), marks negated clauses ("no vocals", "without drums"), and pulls
out what musical descriptors answer better than any tag (tempo, key). The sound scorer
(``newwave.search.sound``) then matches each clause to the sound model and splits a clause
further into words when its words are separate concepts ("sad piano").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Words that say nothing about the sound: dropped before matching, so that "a song
# about war" is judged on "war" (and found outside the vocabulary) instead of
# matching "music from the 1980s" through the word "song".
FILLER = frozenset("""
a an the some any this that these those it its is are be been being was were has have
having of for in on at to from by as into onto over under up down out about like such
song songs music musical track tracks tune tunes piece pieces sound sounds sounding
sounded something kind type sort style vibe vibes feel feeling feels mood one ones
very really quite rather bit little lot lots more most much many please play give me
find i want need looking something which who whose where when while also just
""".split())

_CLAUSE_BREAK = re.compile(r"[,;:!?/|()\[\]\n]+|(?<!\d)\.(?!\d)|\s+(?:and|with|plus|but|"
                           r"featuring|feat\.?|&|while|over)\s+"
                           r"|\s+(?=(?:no|without|non|lacking)\b)", re.IGNORECASE)
_NEGATION = re.compile(r"^(?:no|not|non|without|never|zero|minus|lacking|free of)\b[\s-]*",
                       re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'&+-]*")
_SPELLINGS = [(re.compile(p, re.IGNORECASE), r) for p, r in [
    (r"\br\s*&\s*b\b|\brnb\b|\brhythm and blues\b", "rnb"),
    (r"\bhip[\s-]?hop\b", "hip-hop"),
    (r"\blo[\s-]?fi\b", "lofi"),
]]

_BPM = re.compile(r"(?:\b(?:around|about|roughly|approximately|at|~)\s*)?"
                  r"\b(\d{2,3}(?:\.\d+)?)\s*(?:bpm\b|beats?\s+per\s+minute\b)", re.IGNORECASE)
_TEMPO_SENTENCE = re.compile(r"\bthe\s+tempo\s+of\s+this\s+\w+\s+is\b", re.IGNORECASE)
_KEY = re.compile(r"\b(?:in|key\s+of(?:\s+this\s+\w+\s+is)?|key\s+is)?\s*"
                  r"\b([A-G])(#|♯|b|♭|\s+sharp|\s+flat)?\s*(major|minor|maj|min)\b"
                  r"|\b(?:in|key\s+of)\s+([A-G])(#|♯|b|♭)?(m)?(?![\w#♯♭])")
_SLOW = frozenset({"slow", "slower", "downtempo", "ballad", "lento", "adagio"})
_FAST = frozenset({"fast", "faster", "uptempo", "up-tempo", "upbeat", "energetic",
                   "allegro", "presto", "frantic"})
_LOUD = frozenset({"loud", "louder", "powerful"})
_QUIET = frozenset({"quiet", "quieter", "soft", "gentle", "hushed"})

NOTES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E",
          "E#": "F", "B#": "C"}


@dataclass(frozen=True)
class Concept:
    text: str  # the words to match, fillers removed
    negated: bool = False  # "no vocals": tracks with this sound rank lower


@dataclass(frozen=True)
class DescriptorWishes:
    """What the query says about tempo, key and loudness."""

    bpm: float | None = None  # "around 120 bpm"
    tempo: str | None = None  # "fast" / "slow" (no number)
    key: str | None = None  # "A", "C#" (sharps, see NOTES)
    mode: str | None = None  # "major" / "minor"
    loudness: str | None = None  # "loud" / "quiet"

    @property
    def any(self) -> bool:
        return any(v is not None for v in vars(self).values())

    def describe(self) -> str:
        parts = [f"{self.bpm:g} bpm" if self.bpm else self.tempo or "",
                 " ".join(filter(None, [self.key, self.mode])) if self.key or self.mode else "",
                 self.loudness or ""]
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True)
class ParsedQuery:
    concepts: list[Concept]
    wishes: DescriptorWishes = field(default_factory=DescriptorWishes)


def parse_query(text: str) -> ParsedQuery:
    """Clauses of a description as concepts, and its descriptor wishes."""
    for pattern, replacement in _SPELLINGS:
        text = pattern.sub(replacement, text)
    bpm, text = _take_bpm(text)
    (key, mode), text = _take_key(text)
    concepts: list[Concept] = []
    words_seen: set[str] = set()
    for clause in _CLAUSE_BREAK.split(text):
        clause = clause.strip(" .-'\"")
        negated = bool(_NEGATION.match(clause))
        if negated:
            clause = _NEGATION.sub("", clause)
        words = content_words(clause)
        words_seen.update(w.lower() for w in words)
        if words:
            concepts.append(Concept(" ".join(words), negated))
    tempo = "fast" if words_seen & _FAST else "slow" if words_seen & _SLOW else None
    loudness = "loud" if words_seen & _LOUD else "quiet" if words_seen & _QUIET else None
    return ParsedQuery(concepts, DescriptorWishes(bpm, tempo if bpm is None else None, key,
                                                  mode, loudness))


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w.lower() not in FILLER]


def normalise_key(letter: str, accidental: str | None) -> str:
    """"Bb" -> "A#", "c sharp" -> "C#": one spelling per pitch class (NOTES)."""
    accidental = (accidental or "").strip().lower()
    sign = "#" if accidental in ("#", "♯", "sharp") else "b" if accidental in ("b", "♭", "flat") \
        else ""
    name = letter.upper() + sign
    return _FLATS.get(name, name)


def _take_bpm(text: str) -> tuple[float | None, str]:
    match = _BPM.search(text)
    if match is None:
        return None, text
    bpm = float(match.group(1))
    text = text[:match.start()] + " " + text[match.end():]
    return (bpm if 30 <= bpm <= 300 else None), _TEMPO_SENTENCE.sub(" ", text)


def _take_key(text: str) -> tuple[tuple[str | None, str | None], str]:
    match = _KEY.search(text)
    if match is None:
        return (None, None), text
    if match.group(1):
        key = normalise_key(match.group(1), match.group(2))
        mode = "minor" if match.group(3).lower().startswith("min") else "major"
    else:
        key = normalise_key(match.group(4), match.group(5))
        mode = "minor" if match.group(6) else None
    rest = re.sub(r"\bthe\s+key\s+of\s+this\s+\w+\s+is\b", " ",
                  text[:match.start()] + " " + text[match.end():], flags=re.IGNORECASE)
    return (key, mode), rest
