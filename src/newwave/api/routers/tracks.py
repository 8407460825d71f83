"""Track routes: details, similar tracks, the audio file (with Range), cover art."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from PIL import Image

from newwave.api.deps import Accept, Filters, Limit, Offset, Service, TrackId
from newwave.api.responses import NDJSON, SEARCH_RESPONSES, ApiError, search_answer
from newwave.api.schemas import SearchOut, TrackDetail, TrackOut
from newwave.catalog import Catalog, Track

AUDIO_TYPES = {"mp3": "audio/mpeg", "flac": "audio/flac", "ogg": "audio/ogg", "oga": "audio/ogg",
               "opus": "audio/ogg; codecs=opus", "m4a": "audio/mp4", "mp4": "audio/mp4",
               "aac": "audio/aac", "wav": "audio/wav", "aif": "audio/aiff", "aiff": "audio/aiff"}

router = APIRouter(prefix="/tracks", tags=["tracks"])


def present_track(catalog: Catalog, track_id: int) -> Track:
    """The track, if it is in the library and its file is not marked missing."""
    track = catalog.track(track_id)
    if track is None or track.missing_since is not None:
        raise ApiError(404, f"no track with id {track_id}")
    return track


@router.get("/{track_id}", response_model=TrackDetail)
def get_track(service: Service, track_id: TrackId) -> TrackDetail:
    track = present_track(service.catalog, track_id)
    lyrics = service.catalog.lyrics(track_id)
    descriptors = service.catalog.descriptors([track_id]).get(track_id)
    return TrackDetail(**TrackOut.of(track, descriptors).model_dump(), comment=track.comment,
                       bpm=track.bpm, lyrics=lyrics.text if lyrics else None)


@router.get("/{track_id}/similar", response_model=SearchOut, responses=SEARCH_RESPONSES)
def similar(service: Service, track_id: TrackId, filters: Filters, limit: Limit = 10,
            offset: Offset = 0, accept: Accept = "") -> Response:
    result = service.similar(track_id, limit=limit, offset=offset, filters=filters)
    return search_answer(result, limit, offset, NDJSON in accept, service.catalog)


@router.get("/{track_id}/audio", responses={206: {"description": "the requested byte range"},
                                            416: {"description": "range not satisfiable"}})
def audio(service: Service, track_id: TrackId) -> FileResponse:
    """The track's file, with HTTP Range support so players can seek."""
    track = present_track(service.catalog, track_id)
    if not Path(track.path).is_file():
        raise ApiError(404, f"the file of track {track_id} is gone; rescan the library")
    return FileResponse(track.path, media_type=AUDIO_TYPES.get(track.format,
                                                               "application/octet-stream"))


@router.get("/{track_id}/cover")
def cover(service: Service, track_id: TrackId, request: Request,
          size: Annotated[int | None, Query(ge=16, le=1024)] = None) -> Response:
    """Embedded or folder art; ``size`` gives a thumbnail no larger than size x size."""
    track = present_track(service.catalog, track_id)
    if track.cover_id is None:
        raise ApiError(404, f"track {track_id} has no cover art")
    stored = service.catalog.cover(track.cover_id)
    etag = f'"{stored.sha256[:20]}-{size or 0}"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=604800"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    try:
        body, media_type = _cover_bytes(service.catalog, track.cover_id, size)
    except OSError as exc:
        raise ApiError(404, f"cover of track {track_id} is unreadable ({exc})") from exc
    return Response(body, media_type=media_type, headers=headers)


@lru_cache(maxsize=512)
def _cover_bytes(catalog: Catalog, cover_id: int, size: int | None) -> tuple[bytes, str]:
    stored = catalog.cover(cover_id)
    data = stored.data if stored.data is not None else Path(stored.path).read_bytes()
    if size is None:
        return data, stored.mime
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((size, size))
        out = io.BytesIO()
        if image.mode in ("RGBA", "LA", "P"):
            image.save(out, format="PNG")
            return out.getvalue(), "image/png"
        image.convert("RGB").save(out, format="JPEG", quality=85)
        return out.getvalue(), "image/jpeg"
