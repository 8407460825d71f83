"""The search engine: text, track or recording in; ranked tracks, with reasons, out."""

from newwave.search.engine import (MODES, Hit, Mode, SearchEngine, SearchError, SearchResult,
                                   TrackNotFound)

__all__ = ["MODES", "Hit", "Mode", "SearchEngine", "SearchError", "SearchResult",
           "TrackNotFound"]
