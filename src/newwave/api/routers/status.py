"""Service routes: health and library statistics."""

from __future__ import annotations

from fastapi import APIRouter

from newwave import __version__
from newwave.api.deps import Service
from newwave.api.schemas import HealthOut, StatsOut

router = APIRouter(tags=["service"])


@router.get("/health", response_model=HealthOut)
def health(service: Service) -> HealthOut:
    return HealthOut(version=__version__, tracks=service.catalog.stats().tracks)


@router.get("/stats", response_model=StatsOut)
def stats(service: Service) -> StatsOut:
    s = service.catalog.stats()
    settings = service.settings
    return StatsOut(tracks=s.tracks, artists=s.artists, albums=s.albums,
                    with_lyrics=s.with_lyrics, with_cover=s.with_cover, missing=s.missing,
                    errors=s.errors, total_duration=s.total_duration, formats=s.formats,
                    text_model=settings.text_model, audio_model=settings.audio_model,
                    fusion_model=settings.fusion_model or None)
