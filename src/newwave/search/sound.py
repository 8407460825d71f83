"""Scoring tracks by how they sound against a description of several concepts.

A query is read as concepts (``newwave.search.concepts``); each is matched to the sound
model (musicnn's tags offline, CLAP's joint space when configured) and scored against
every track of the library, exactly: the audio–text space is small (100 tag
probabilities per track) and calibration needs the whole library anyway. Each concept's
scores are standardised over the library, so "sad" and "piano" count alike however
different their raw scales, and a track's sound score is the mean over concepts,
weighted by how strongly each matched the model (a negated concept counts against).
A track that is sad *and* piano thus beats one that is only very much piano. Musical
descriptors (tempo, key, loudness) asked for in the query join as concepts of their own.

Concepts the sound model does not know are left out and named in the notes; a query
with no known concept gets no sound ranking at all, rather than noise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from newwave.models.base import QueryVector, TextQueryModel
from newwave.search.concepts import Concept, DescriptorWishes, NOTES, content_words, parse_query

Ranking = list[tuple[int, float]]
MAX_SPLIT_WORDS = 6  # a longer clause is a phrase ("a synth lead playing the melody")
# A word becomes a concept of its own only when it matches the sound model this well:
# alone, everyday words land on tags by accident ("home" -> house music, "keyboard" ->
# synth). 0.6 is above the best tag similarity of every one of 50 non-musical words
# (war, kitchen, election, ...) under MiniLM; a whole clause needs MIN_SIMILARITY.
WORD_SIMILARITY = 0.6
# Half or double the asked tempo is a common reading of the same beat (and a common
# estimation error): it counts, but less than the tempo itself.
OCTAVE_PENALTY = 0.3
FAST_BPM, SLOW_BPM = 120.0, 90.0


@dataclass(frozen=True)
class SoundOptions:
    """Which parts of the sound scoring run (each can be switched off to measure it)."""

    # Per-tag calibration of track tag probabilities (log-probabilities standardised
    # against the library and the built-in prior): +0.013 macro MRR on the dev suite,
    # though it lowers three of the six sets (docs/evaluation.md).
    calibrate: bool = True
    concepts: bool = True  # a query is several concepts that must each count
    negation: bool = True  # "no vocals" counts against vocals
    descriptors: bool = True  # tempo, key, loudness from the query meet the tracks'


@dataclass(frozen=True)
class MatchedConcept:
    label: str  # what the user wrote, e.g. "no drums", "120 bpm"
    negated: bool
    note: str | None  # what the model made of it (the tags matched)
    scores: np.ndarray  # [n] standardised over the library (raw for a lone concept)
    weight: float = 1.0  # how surely the query says it: a text concept's match strength


@dataclass
class SoundRanking:
    ranking: Ranking  # best first, every library track that passes the filters
    notes: list[str]
    concepts: list[MatchedConcept] = field(default_factory=list)
    _row: dict[int, int] = field(default_factory=dict)
    _score: np.ndarray | None = None

    @property
    def confident(self) -> bool:
        return bool(self.concepts)

    def score(self, track_id: int) -> float | None:
        row = self._row.get(track_id)
        return None if row is None or self._score is None else float(self._score[row])

    def explain(self, track_id: int) -> str | None:
        """What the track's sound score is made of: the tags of a lone concept, or how
        the track met each concept in standard deviations from the library's mean
        ("sad +1.8, piano +2.3, not drums -0.4")."""
        row = self._row.get(track_id)
        if row is None or not self.concepts:
            return None
        if len(self.concepts) == 1 and not self.concepts[0].negated:
            return self.concepts[0].note
        return ", ".join(f"{c.label} {c.scores[row]:+.1f}" for c in self.concepts)


DescriptorSource = Callable[[], Mapping[int, object]]


class SoundScorer:
    def __init__(self, model: Callable[[], TextQueryModel],
                 encode: Callable[[list[str]], list[QueryVector]],
                 library: Callable[[], tuple[np.ndarray, np.ndarray]],
                 descriptors: DescriptorSource | None = None,
                 options: SoundOptions = SoundOptions()) -> None:
        """``model``: the text side of the audio–text space; ``encode``: texts -> its
        query vectors (cached by the query encoder); ``library``: (track ids, track
        vectors) of the space; ``descriptors``: track id -> its musical descriptors."""
        self.model = model
        self.encode = encode
        self.library = library
        self.descriptors = descriptors
        self.options = options
        self._calibrated: tuple[np.ndarray, np.ndarray] | None = None  # (raw, calibrated)

    def with_options(self, options: SoundOptions) -> SoundScorer:
        return SoundScorer(self.model, self.encode, self.library, self.descriptors, options)

    def rank(self, query: str, allowed: set[int] | None = None) -> SoundRanking:
        track_ids, values = self._values()
        notes: list[str] = []
        concepts = self._match(query, notes)
        matched = [MatchedConcept(label, negated, vector.note, values @ vector.vector,
                                  vector.strength)
                   for label, negated, vector in concepts]
        parsed = parse_query(query)
        wishes = parsed.wishes if self.options.descriptors else DescriptorWishes()
        matched += self._descriptor_concepts(wishes, track_ids, notes)
        if self.options.concepts and not parsed.concepts and not parsed.wishes.any:
            # Only generic words ("music", "some songs"): every track answers alike.
            notes.append("the query names no particular sound: every track matches")
            matched = [MatchedConcept(query, False, None, np.zeros(len(track_ids)))]
        if not matched or len(track_ids) == 0:
            return SoundRanking([], notes, matched)
        if len(matched) == 1 and not matched[0].negated:
            combined = matched[0].scores  # one concept: its own scale, as the model gives it
        else:
            matched = [replace(m, scores=_standardise(m.scores)) for m in matched]
            combined = np.average([-m.scores if m.negated else m.scores for m in matched],
                                  axis=0, weights=[m.weight for m in matched])
        keep = np.ones(len(track_ids), bool) if allowed is None else \
            np.isin(track_ids, np.fromiter(allowed, np.int64, len(allowed)))
        rows = np.flatnonzero(keep)
        order = rows[np.lexsort((track_ids[rows], -combined[rows]))]
        ranking = [(int(track_ids[i]), float(combined[i])) for i in order]
        return SoundRanking(ranking, notes, matched,
                            {int(t): i for i, t in enumerate(track_ids.tolist())}, combined)

    # -- concepts --------------------------------------------------------------------

    def _match(self, query: str, notes: list[str]) -> list[tuple[str, bool, QueryVector]]:
        """(label, negated, query vector) of each concept the sound model knows."""
        if not self.options.concepts:
            vector = self.encode([query])[0]
            if not vector.confident:
                notes.append(vector.note or "the query matches no sound")
                return []
            if vector.note:
                notes.append(vector.note)
            return [(query, False, vector)]
        clauses = parse_query(query).concepts
        if not self.options.negation:
            clauses = [Concept(("no " if c.negated else "") + c.text) for c in clauses]
        words = {c.text: content_words(c.text) for c in clauses}
        splittable = [w for c in clauses if 2 <= len(ws := words[c.text]) <= MAX_SPLIT_WORDS
                      for w in ws]
        texts = list(dict.fromkeys([c.text for c in clauses] + splittable))
        vectors = dict(zip(texts, self.encode(texts))) if texts else {}
        concepts: list[tuple[str, bool, QueryVector]] = []
        unknown: list[str] = []
        for clause in clauses:
            parts = words[clause.text]
            known = [w for w in parts if w in splittable and vectors[w].confident
                     and vectors[w].strength >= WORD_SIMILARITY]
            if len(known) >= 2:  # separate concepts: "sad piano" is sad AND piano
                concepts += [(w, clause.negated, vectors[w]) for w in known]
                unknown += [w for w in parts if w not in known]
            elif vectors[clause.text].confident:
                concepts.append((clause.text, clause.negated, vectors[clause.text]))
            else:
                unknown.append(clause.text)
        for label, negated, vector in concepts:
            notes.append(f"{'not ' if negated else ''}{label}: {vector.note}")
        if unknown:
            notes.append("not understood by the sound model: " + ", ".join(
                f"'{u}'" for u in unknown))
        return [(("not " if n else "") + label, n, v) for label, n, v in concepts]

    def _values(self) -> tuple[np.ndarray, np.ndarray]:
        """The library's track vectors as the query vectors are scored against them
        (calibrated once per library state)."""
        track_ids, matrix = self.library()
        if not self.options.calibrate or len(matrix) == 0:
            return track_ids, matrix
        if self._calibrated is None or self._calibrated[0] is not matrix:
            self._calibrated = (matrix, self.model().calibrate(matrix))
        return track_ids, self._calibrated[1]

    # -- descriptors -----------------------------------------------------------------

    def _descriptor_concepts(self, wishes: DescriptorWishes, track_ids: np.ndarray,
                             notes: list[str]) -> list[MatchedConcept]:
        if not wishes.any or self.descriptors is None or len(track_ids) == 0:
            return []
        known = self.descriptors()
        if not known:
            notes.append(f"asked for {wishes.describe()}, but no track has descriptors yet; "
                         "run `newwave index`")
            return []
        rows = [known.get(int(t)) for t in track_ids]
        concepts = []
        bpm = np.array([getattr(d, "bpm", None) or np.nan for d in rows], dtype=np.float64)
        if wishes.bpm is not None:
            concepts.append(MatchedConcept(f"{wishes.bpm:g} bpm", False, None,
                                           _fill(_tempo_match(bpm, wishes.bpm))))
        elif wishes.tempo is not None:
            target = FAST_BPM if wishes.tempo == "fast" else SLOW_BPM
            lean = np.log2(bpm / target) * (1 if wishes.tempo == "fast" else -1)
            concepts.append(MatchedConcept(f"{wishes.tempo} tempo", False, None,
                                           _fill(np.clip(lean, -1, 1))))
        if wishes.key is not None or wishes.mode is not None:
            concepts.append(MatchedConcept(
                " ".join(filter(None, [wishes.key, wishes.mode])), False, None,
                _fill(np.array([_key_match(d, wishes) for d in rows], dtype=np.float64))))
        if wishes.loudness is not None:
            lufs = np.array([getattr(d, "loudness_lufs", None) or np.nan for d in rows],
                            dtype=np.float64)
            concepts.append(MatchedConcept(wishes.loudness, False, None,
                                           _fill(lufs if wishes.loudness == "loud" else -lufs)))
        if concepts:
            notes.append(f"descriptors: {wishes.describe()}")
        return concepts


def _tempo_match(bpm: np.ndarray, target: float) -> np.ndarray:
    """0 at the asked tempo, falling with the distance in octaves; half or double time
    counts with a penalty."""
    distance = np.abs(np.log2(bpm / target))
    return -np.minimum(distance, np.abs(distance - 1) + OCTAVE_PENALTY)


def _key_match(descriptors: object, wishes: DescriptorWishes) -> float:
    """1: the asked key (and mode); 0.5: its relative key (same notes, other mode) or the
    right key in the other mode; 0: anything else; nan: unknown."""
    key, mode = getattr(descriptors, "key", None), getattr(descriptors, "mode", None)
    if key is None:
        return np.nan
    if wishes.key is None:
        return float(mode == wishes.mode)
    if key == wishes.key:
        return 1.0 if wishes.mode in (None, mode) else 0.5
    if wishes.mode is not None and mode is not None and mode != wishes.mode:
        shift = 3 if wishes.mode == "minor" else -3  # A minor <-> C major
        relative = NOTES[(NOTES.index(wishes.key) + shift) % 12]
        return 0.5 if key == relative else 0.0
    return 0.0


def _fill(scores: np.ndarray) -> np.ndarray:
    """Tracks without the descriptor score as the library's average (neutral)."""
    scores = np.asarray(scores, dtype=np.float64)
    known = np.isfinite(scores)
    return np.where(known, scores, scores[known].mean() if known.any() else 0.0)


def _standardise(scores: np.ndarray) -> np.ndarray:
    spread = scores.std()
    return (scores - scores.mean()) / spread if spread > 1e-9 else np.zeros_like(scores)
