"""SQLite catalog: tracks, lyrics, covers, scan errors, feedback and jobs."""

from newwave.catalog.catalog import Catalog, JobProgress, connect
from newwave.catalog.models import (
    CatalogStats,
    CoverImage,
    FeedbackKind,
    Job,
    Lyrics,
    ScanErrorRow,
    Track,
    TrackFilter,
    TrackRecord,
    StoredVectors,
    VectorKind,
    VectorSpace,
    VectorSpaceMismatch,
)
from newwave.catalog.schema import SCHEMA_VERSION, SchemaError

__all__ = [
    "SCHEMA_VERSION",
    "Catalog",
    "CatalogStats",
    "CoverImage",
    "FeedbackKind",
    "Job",
    "JobProgress",
    "Lyrics",
    "ScanErrorRow",
    "SchemaError",
    "Track",
    "TrackFilter",
    "TrackRecord",
    "StoredVectors",
    "VectorKind",
    "VectorSpace",
    "VectorSpaceMismatch",
    "connect",
]
