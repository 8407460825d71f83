"""The HTTP API and the web client, over one :class:`SearchEngine`.

Routes are thin: they validate, call the engine or the catalog, and shape the answer.
No path from a client ever reaches the file system: audio and covers are looked up by
catalog id, and the web client is served from the package's own folder.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, File, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.exceptions import HTTPException

from newwave import __version__
from newwave.api.jobs import JobAlreadyRunning, LibraryJobs
from newwave.api.schemas import (ErrorOut, FeedbackIn, FeedbackOut, HealthOut, HitOut, JobOut,
                                 QueryLine, SearchOut, StatsOut, SummaryLine, TrackDetail,
                                 TrackOut)
from newwave.audio import AudioDecodeError, decode
from newwave.catalog import Catalog, Track, TrackFilter
from newwave.config import Settings
from newwave.models.registry import ActiveModels
from newwave.search import SearchEngine, SearchError, SearchResult

NDJSON = "application/x-ndjson"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_RECORDING_SECONDS = 120.0
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
AUDIO_TYPES = {"mp3": "audio/mpeg", "flac": "audio/flac", "ogg": "audio/ogg", "oga": "audio/ogg",
               "opus": "audio/ogg; codecs=opus", "m4a": "audio/mp4", "mp4": "audio/mp4",
               "aac": "audio/aac", "wav": "audio/wav", "aif": "audio/aiff", "aiff": "audio/aiff"}


class ApiError(HTTPException):
    """An error answered as ``{"error": reason}`` with its status code."""


def search_filters(artist: str | None = None, album: str | None = None,
                   genre: str | None = None, year_min: int | None = None,
                   year_max: int | None = None,
                   min_duration: Annotated[float | None, Query(ge=0)] = None,
                   max_duration: Annotated[float | None, Query(ge=0)] = None,
                   has_lyrics: bool | None = None) -> TrackFilter:
    return TrackFilter(artist=artist, album=album, genre=genre, year_min=year_min,
                       year_max=year_max, min_duration=min_duration,
                       max_duration=max_duration, has_lyrics=has_lyrics)


# Parameters shared by the search routes (module level: FastAPI resolves them by name).
Q = Annotated[str, Query(min_length=1, max_length=500, description="What to look for.")]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=10_000)]
Filters = Annotated[TrackFilter, Depends(search_filters)]
Accept = Annotated[str, Header()]


def create_app(settings: Settings, *, models: ActiveModels | None = None) -> FastAPI:
    catalog = Catalog(settings.catalog_path)
    engine = SearchEngine(catalog, models or ActiveModels(settings), settings.index_dir)
    jobs = LibraryJobs(settings.catalog_path, engine)
    app = FastAPI(title="NewWave", version=__version__,
                  description="Find music by description: by sound, by lyrics, or both.",
                  responses={400: {"model": ErrorOut}, 404: {"model": ErrorOut},
                             422: {"model": ErrorOut}})
    app.state.catalog, app.state.engine, app.state.jobs = catalog, engine, jobs

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                            for e in exc.errors())
        return JSONResponse({"error": f"invalid request: {reasons}"}, status_code=422)

    @app.exception_handler(SearchError)
    async def search_error(_: Request, exc: SearchError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=422)

    # -- search ------------------------------------------------------------------------

    def answer(result: SearchResult, limit: int, offset: int, stream: bool) -> Response:
        if not stream:
            return JSONResponse(SearchOut.of(result).model_dump())
        return StreamingResponse(_ndjson(result, limit, offset), media_type=NDJSON)

    @app.get("/search/audio", response_model=SearchOut, tags=["search"])
    def search_audio(q: Q, filters: Filters, limit: Limit = 10, offset: Offset = 0,
                     accept: Accept = "") -> Response:
        """Tracks by how they sound. JSON, or NDJSON with ``Accept: application/x-ndjson``."""
        result = engine.search(q, "audio", limit=limit, offset=offset, filters=filters)
        return answer(result, limit, offset, NDJSON in accept)

    @app.get("/search/lyrics", response_model=SearchOut, tags=["search"])
    def search_lyrics(q: Q, filters: Filters, limit: Limit = 10, offset: Offset = 0,
                      accept: Accept = "") -> Response:
        """Tracks by what their lyrics are about."""
        result = engine.search(q, "lyrics", limit=limit, offset=offset, filters=filters)
        return answer(result, limit, offset, NDJSON in accept)

    @app.get("/search/combined", tags=["search"],
             responses={200: {"content": {NDJSON: {}}, "description": "NDJSON: a query line, "
                              "one line per hit, a summary line"}})
    def search_combined(q: Q, filters: Filters, limit: Limit = 10, offset: Offset = 0,
                        accept: Accept = "") -> Response:
        """Both signals, streamed as NDJSON (JSON only when asked for with
        ``Accept: application/json``)."""
        result = engine.search(q, "combined", limit=limit, offset=offset, filters=filters)
        return answer(result, limit, offset, accept.strip() != "application/json")

    @app.post("/search/by-audio", response_model=SearchOut, tags=["search"],
              responses={413: {"model": ErrorOut}})
    async def search_by_audio(filters: Filters, file: Annotated[UploadFile, File(
            description="A recording: webm/opus, ogg, mp4/aac, wav, mp3, flac")],
            limit: Limit = 10, offset: Offset = 0, accept: Accept = "") -> Response:
        """Tracks that sound like a recorded or uploaded snippet (3 s to 2 min)."""
        data = bytearray()
        while chunk := await file.read(1 << 20):
            data.extend(chunk)
            if len(data) > MAX_UPLOAD_BYTES:
                raise ApiError(413, f"upload is over {MAX_UPLOAD_BYTES // (1 << 20)} MB; "
                                    "send a shorter recording")
        rate = engine.models.audio_model.sample_rate
        try:
            waveform = decode(io.BytesIO(bytes(data)), rate,
                              max_seconds=MAX_RECORDING_SECONDS + 1)
        except AudioDecodeError as exc:
            raise ApiError(422, f"cannot decode the upload ({exc.reason}); send webm/opus, "
                                "ogg, mp4/aac, wav, mp3 or flac audio") from exc
        if waveform.size / rate > MAX_RECORDING_SECONDS:
            raise ApiError(422, f"recording is longer than {MAX_RECORDING_SECONDS:.0f} s; "
                                "send a shorter snippet")
        result = engine.by_audio(waveform, rate, limit=limit, offset=offset, filters=filters)
        return answer(result, limit, offset, NDJSON in accept)

    # -- tracks ------------------------------------------------------------------------

    def present_track(track_id: int) -> Track:
        track = catalog.track(track_id)
        if track is None or track.missing_since is not None:
            raise ApiError(404, f"no track with id {track_id}")
        return track

    @app.get("/tracks/{track_id}", response_model=TrackDetail, tags=["tracks"])
    def get_track(track_id: int) -> TrackDetail:
        track = present_track(track_id)
        lyrics = catalog.lyrics(track_id)
        return TrackDetail(**TrackOut.of(track).model_dump(), comment=track.comment,
                           bpm=track.bpm, lyrics=lyrics.text if lyrics else None)

    @app.get("/tracks/{track_id}/similar", response_model=SearchOut, tags=["tracks"])
    def similar(track_id: int, filters: Filters, limit: Limit = 10, offset: Offset = 0,
                accept: Accept = "") -> Response:
        present_track(track_id)
        result = engine.similar(track_id, limit=limit, offset=offset, filters=filters)
        return answer(result, limit, offset, NDJSON in accept)

    @app.get("/tracks/{track_id}/audio", tags=["tracks"],
             responses={206: {"description": "the requested byte range"},
                        416: {"description": "range not satisfiable"}})
    def audio(track_id: int) -> FileResponse:
        """The track's file, with HTTP Range support so players can seek."""
        track = present_track(track_id)
        if not Path(track.path).is_file():
            raise ApiError(404, f"the file of track {track_id} is gone; rescan the library")
        return FileResponse(track.path, media_type=AUDIO_TYPES.get(track.format,
                                                                   "application/octet-stream"))

    @app.get("/tracks/{track_id}/cover", tags=["tracks"])
    def cover(track_id: int, request: Request,
              size: Annotated[int | None, Query(ge=16, le=1024)] = None) -> Response:
        """Embedded or folder art; ``size`` gives a thumbnail no larger than size x size."""
        track = present_track(track_id)
        if track.cover_id is None:
            raise ApiError(404, f"track {track_id} has no cover art")
        stored = catalog.cover(track.cover_id)
        etag = f'"{stored.sha256[:20]}-{size or 0}"'
        headers = {"ETag": etag, "Cache-Control": "public, max-age=604800"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        try:
            body, media_type = _cover_bytes(track.cover_id, size)
        except OSError as exc:
            raise ApiError(404, f"cover of track {track_id} is unreadable ({exc})") from exc
        return Response(body, media_type=media_type, headers=headers)

    @lru_cache(maxsize=512)
    def _cover_bytes(cover_id: int, size: int | None) -> tuple[bytes, str]:
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

    # -- feedback, library, health -----------------------------------------------------

    @app.post("/feedback", response_model=FeedbackOut, status_code=201, tags=["feedback"])
    def feedback(body: FeedbackIn) -> FeedbackOut:
        present_track(body.track_id)
        feedback_id = catalog.add_feedback(body.track_id, body.kind, body.query)
        return FeedbackOut(id=feedback_id, track_id=body.track_id, kind=body.kind)

    @app.post("/library/scan", response_model=JobOut, status_code=202, tags=["library"],
              responses={409: {"model": ErrorOut}})
    def scan() -> JobOut:
        """Rescan every library folder, embed what changed and update the indexes, in the
        background; poll ``/jobs/{id}``."""
        if not catalog.roots():
            raise ApiError(409, "no library folder yet; run `newwave index FOLDER` first")
        try:
            job_id = jobs.start_scan(catalog)
        except JobAlreadyRunning as exc:
            raise ApiError(409, f"{exc}; poll /jobs/{exc.job_id}") from exc
        return JobOut.of(catalog.job(job_id))

    @app.get("/jobs/{job_id}", response_model=JobOut, tags=["library"])
    def job(job_id: int) -> JobOut:
        found = catalog.job(job_id)
        if found is None:
            raise ApiError(404, f"no job with id {job_id}")
        return JobOut.of(found)

    @app.get("/health", response_model=HealthOut, tags=["service"])
    def health() -> HealthOut:
        return HealthOut(version=__version__, tracks=catalog.stats().tracks)

    @app.get("/stats", response_model=StatsOut, tags=["service"])
    def stats() -> StatsOut:
        s = catalog.stats()
        return StatsOut(tracks=s.tracks, artists=s.artists, albums=s.albums,
                        with_lyrics=s.with_lyrics, with_cover=s.with_cover, missing=s.missing,
                        errors=s.errors, total_duration=s.total_duration, formats=s.formats,
                        text_model=settings.text_model, audio_model=settings.audio_model,
                        fusion_model=settings.fusion_model or None)

    app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    return app


def _ndjson(result: SearchResult, limit: int, offset: int) -> Iterator[bytes]:
    """A query line, one line per hit, then a summary line; each flushed on its own."""
    yield _line(QueryLine(mode=result.mode, query=result.query, limit=limit, offset=offset))
    for hit in result.hits:
        yield _line(HitOut.of(hit))
    yield _line(SummaryLine(returned=len(result.hits), candidates=result.candidates,
                            notes=result.notes, elapsed_ms=result.elapsed_ms))


def _line(model: object) -> bytes:
    return (json.dumps(model.model_dump(), ensure_ascii=False) + "\n").encode("utf-8")
