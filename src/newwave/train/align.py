"""Aligning two track catalogs (e.g. an audio corpus and a lyrics/interpretation corpus)
on normalised title + artist, the way the seeds built their multimodal training set.

Names are normalised (accents, case, punctuation, "feat." credits, remaster and edit
suffixes, a leading or trailing "The"); candidates are blocked by shared words of the
normalised title or artist, skipping words so common that they block nothing (so the
work stays far below n x m); pairs are
scored with rapidfuzz: ``0.6 * title similarity + 0.4 * artist similarity``
(token-set ratios). Pairs at or above ``threshold`` match, one-to-one, best first;
pairs just below are reported as borderline for a human to review.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz

# "(feat. X)", "[with X]", or an unbracketed "feat. X" / "featuring X" to the end.
_FEATURING = re.compile(r"\s*(?:[\(\[]\s*(?:feat\.?|ft\.?|featuring|with)\s[^\)\]]*[\)\]]"
                        r"|\s(?:feat\.|ft\.|featuring)\s.*$)", re.I)
# A version suffix after a dash or inside brackets: "- Remastered 2011", "(Live at X)".
_SUFFIX = re.compile(
    r"\s*(?:[-\u2013\u2014]\s*|[\(\[]\s*)(?:\d{4}\s+)?(?:remaster(?:ed)?|re-?mastered|"
    r"remix(?:ed)?|radio edit|single version|album version|mono|stereo|live|deluxe|"
    r"bonus track|explicit|clean)\b.*$", re.I)
_THE = re.compile(r"^the\s+|,\s*the$", re.I)


def normalise(text: str, *, artist: bool = False) -> str:
    """Lower-case ASCII words: accents stripped, credits and version suffixes dropped."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = _FEATURING.sub("", text)
    if not artist:
        text = _SUFFIX.sub("", text)
    text = text.replace("&", " and ").strip()
    if artist:
        text = _THE.sub("", text.strip())
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return re.sub(r"\s+", " ", text).strip()


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    title: str
    artist: str


@dataclass(frozen=True)
class Match:
    left: str
    right: str
    score: float  # 0..100
    left_name: str
    right_name: str


@dataclass
class AlignmentReport:
    matches: list[Match]
    borderline: list[Match]  # just under the threshold: review these
    left_total: int
    right_total: int
    comparisons: int  # scored pairs (blocking keeps this far below left x right)
    unmatched_left: list[str] = field(default_factory=list)

    def summary(self) -> str:
        share = len(self.matches) / max(self.left_total, 1)
        return (f"{len(self.matches)} matches of {self.left_total} x {self.right_total} "
                f"({share:.0%} of the left catalog), {len(self.borderline)} borderline, "
                f"{self.comparisons} comparisons")


def _words(title: str, artist: str) -> set[str]:
    return set(title.split()) | set(artist.split())


def align(left: Sequence[CatalogEntry], right: Sequence[CatalogEntry], *,
          threshold: float = 90.0, borderline_margin: float = 10.0,
          borderline_sample: int = 20) -> AlignmentReport:
    index: dict[str, list[int]] = defaultdict(list)
    right_norm = [(normalise(r.title), normalise(r.artist, artist=True)) for r in right]
    for j, (title, artist) in enumerate(right_norm):
        for word in _words(title, artist):
            index[word].append(j)
    common = max(20, len(right) // 50)  # a word in more entries than this blocks nothing
    scored: list[tuple[float, int, int]] = []
    comparisons = 0
    for i, entry in enumerate(left):
        title, artist = normalise(entry.title), normalise(entry.artist, artist=True)
        blocks = [index[w] for w in _words(title, artist) if w in index]
        rare = [b for b in blocks if len(b) <= common]
        # Only common words: compare within the smallest of their blocks.
        candidates = {j for b in rare for j in b} if rare else \
            set(min(blocks, key=len)) if blocks else set()
        for j in candidates:
            comparisons += 1
            score = 0.6 * fuzz.token_set_ratio(title, right_norm[j][0]) + \
                0.4 * fuzz.token_set_ratio(artist, right_norm[j][1])
            if score >= threshold - borderline_margin:
                scored.append((score, i, j))
    scored.sort(key=lambda s: (-s[0], s[1], s[2]))
    used_left, used_right = set(), set()
    matches, borderline = [], []
    for score, i, j in scored:
        match = Match(left[i].id, right[j].id, round(score, 1),
                      f"{left[i].artist} - {left[i].title}", f"{right[j].artist} - {right[j].title}")
        if score >= threshold:
            if i not in used_left and j not in used_right:
                used_left.add(i)
                used_right.add(j)
                matches.append(match)
        elif i not in used_left and len(borderline) < borderline_sample:
            borderline.append(match)
    return AlignmentReport(matches, borderline, len(left), len(right), comparisons,
                           [left[i].id for i in range(len(left)) if i not in used_left])
