"""Scanning a music folder: tags, cover art, lyrics sidecars, incremental rescans."""

from newwave.library.scanner import (
    AUDIO_EXTENSIONS,
    ScanError,
    Scanner,
    ScanProgress,
    ScanReport,
    hash_file,
)

__all__ = ["AUDIO_EXTENSIONS", "ScanError", "ScanProgress", "ScanReport", "Scanner", "hash_file"]
