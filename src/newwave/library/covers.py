"""Turning embedded pictures and folder images into catalog cover records."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from newwave.catalog.models import CoverImage, CoverSource

_PIL_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


def cover_from_bytes(data: bytes, source: CoverSource, path: Path | None = None) -> CoverImage | None:
    """A cover record for image bytes, or None when the bytes are not a readable image
    (broken art is dropped; it never costs the track)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            mime = _PIL_MIME.get(image.format or "", "application/octet-stream")
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return CoverImage(sha256=hashlib.sha256(data).hexdigest(), source=source, mime=mime,
                      width=width, height=height,
                      data=data if source == "embedded" else None,
                      path=str(path) if path is not None else None)


def cover_from_file(path: Path) -> CoverImage | None:
    return cover_from_bytes(path.read_bytes(), "folder", path)
