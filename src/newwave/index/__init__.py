"""Vector indexes: FAISS over one vector space each, kept in sync with the catalog."""

from newwave.index.faiss_index import (
    CHUNK_BITS,
    SyncReport,
    VectorIndex,
    build_index,
    track_ids_of,
    vector_ids,
)

__all__ = ["CHUNK_BITS", "SyncReport", "VectorIndex", "build_index", "track_ids_of", "vector_ids"]
