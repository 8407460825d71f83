"""Search routes: by sound, by lyrics, both, and by a recording."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from newwave.api.deps import Accept, Filters, Limit, Offset, Q, Service
from newwave.api.responses import NDJSON, SEARCH_RESPONSES, ApiError, search_answer
from newwave.api.schemas import ErrorOut, SearchOut

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_RECORDING_SECONDS = 120.0

router = APIRouter(prefix="/search", tags=["search"])


@router.get("/audio", response_model=SearchOut, responses=SEARCH_RESPONSES)
def search_audio(service: Service, q: Q, filters: Filters, limit: Limit = 10,
                 offset: Offset = 0, accept: Accept = "") -> Response:
    """Tracks by how they sound. JSON, or NDJSON with ``Accept: application/x-ndjson``."""
    result = service.search(q, "audio", limit=limit, offset=offset, filters=filters)
    return search_answer(result, limit, offset, NDJSON in accept, service.catalog)


@router.get("/lyrics", response_model=SearchOut, responses=SEARCH_RESPONSES)
def search_lyrics(service: Service, q: Q, filters: Filters, limit: Limit = 10,
                  offset: Offset = 0, accept: Accept = "") -> Response:
    """Tracks by what their lyrics are about."""
    result = service.search(q, "lyrics", limit=limit, offset=offset, filters=filters)
    return search_answer(result, limit, offset, NDJSON in accept, service.catalog)


@router.get("/combined", responses={200: {"content": {NDJSON: {}}, "description": (
    "NDJSON: a query line, one line per hit, a summary line")}})
def search_combined(service: Service, q: Q, filters: Filters, limit: Limit = 10,
                    offset: Offset = 0, accept: Accept = "") -> Response:
    """Both signals, streamed as NDJSON (JSON only when asked for with
    ``Accept: application/json``)."""
    result = service.search(q, "combined", limit=limit, offset=offset, filters=filters)
    return search_answer(result, limit, offset, accept.strip() != "application/json",
                         service.catalog)


@router.post("/by-audio", response_model=SearchOut,
             responses={**SEARCH_RESPONSES, 413: {"model": ErrorOut}})
async def search_by_audio(service: Service, filters: Filters, file: Annotated[UploadFile, File(
        description="A recording: webm/opus, ogg, mp4/aac, wav, mp3, flac")],
        limit: Limit = 10, offset: Offset = 0, accept: Accept = "") -> Response:
    """Tracks that sound like a recorded or uploaded snippet (3 s to 2 min)."""
    data = bytearray()
    while chunk := await file.read(1 << 20):
        data.extend(chunk)
        if len(data) > MAX_UPLOAD_BYTES:
            raise ApiError(413, f"upload is over {MAX_UPLOAD_BYTES // (1 << 20)} MB; "
                                "send a shorter recording")
    # Decoding and embedding take CPU seconds: in a worker process, waited for off the
    # event loop (a full worker queue answers 503 with Retry-After).
    result = await run_in_threadpool(
        service.by_audio, bytes(data), max_seconds=MAX_RECORDING_SECONDS,
        limit=limit, offset=offset, filters=filters)
    return search_answer(result, limit, offset, NDJSON in accept, service.catalog)
