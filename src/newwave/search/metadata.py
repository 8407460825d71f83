"""The query's words against each track's tags: a signal of the combined search.

"80s synth pop" names a decade and a genre that a library's tags often carry even when
the sound model cannot hear them. Each track's title, artist, album, genre, comment
and year (with its decade: 1984 -> "80s", "1980s", "eighties") is a short document,
matched by BM25; the matcher is rebuilt when the library changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from newwave.catalog import Catalog, Track
from newwave.search.concepts import FILLER
from newwave.search.keywords import BM25, tokenize

Ranking = list[tuple[int, float]]
_DECADE_WORDS = {1950: "fifties", 1960: "sixties", 1970: "seventies", 1980: "eighties",
                 1990: "nineties"}


def track_document(track: Track) -> str:
    """The words a track's tags give it."""
    words = [track.title, track.artist, track.album, track.album_artist, track.genre,
             track.comment]
    if track.year:
        decade = track.year // 10 * 10
        words += [str(track.year), f"{decade}s", f"{decade % 100:02d}s",
                  _DECADE_WORDS.get(decade, "")]
    return " ".join(w for w in words if w)


class MetadataMatcher:
    def __init__(self, catalog: Catalog, generation: Callable[[], int]) -> None:
        """``generation``: changes whenever the library does (the index set's syncs)."""
        self.catalog = catalog
        self.generation = generation
        self._built: tuple[int, list[int], BM25] | None = None
        self._lock = threading.Lock()

    def rank(self, query: str, allowed: set[int] | None = None) -> Ranking:
        """Tracks whose tags share words with the query (fillers aside), best first."""
        if not [w for w in tokenize(query) if w not in FILLER]:
            return []
        track_ids, bm25 = self._index()
        scores = bm25.scores(" ".join(w for w in tokenize(query) if w not in FILLER))
        ranking = [(t, float(s)) for t, s in zip(track_ids, scores)
                   if s > 0 and (allowed is None or t in allowed)]
        return sorted(ranking, key=lambda item: (-item[1], item[0]))

    def track_ids(self) -> frozenset[int]:
        """Every track the matcher judges (all present tracks)."""
        return frozenset(self._index()[0])

    def _index(self) -> tuple[list[int], BM25]:
        generation = self.generation()
        with self._lock:
            if self._built is None or self._built[0] != generation:
                tracks = self.catalog.tracks()
                self._built = (generation, [t.id for t in tracks],
                               BM25([track_document(t) for t in tracks]))
            return self._built[1], self._built[2]
