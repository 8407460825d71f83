"""Vector indexes: FAISS over one vector space each, kept in sync with the catalog, and
the index set that owns them for the active models."""

from newwave.index.faiss_index import (
    CHUNK_BITS,
    SyncReport,
    VectorIndex,
    build_index,
    track_ids_of,
    vector_ids,
)
from newwave.index.index_set import KINDS, IndexSet

__all__ = ["CHUNK_BITS", "KINDS", "IndexSet", "SyncReport", "VectorIndex", "build_index",
           "track_ids_of", "vector_ids"]
