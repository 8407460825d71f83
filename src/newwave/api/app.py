"""The HTTP API and the web client, over one :class:`NewWave` service.

Routes are thin (``newwave.api.routers``): they validate, call the service, and shape
the answer. Every NewWave error becomes ``{"error": reason}`` with its family's status
(422, 404, 409, 503), never a 500. No path from a client ever reaches the file system:
audio and covers are looked up by catalog id, and the web client is served from the
package's own folder.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from newwave import __version__
from newwave.api.jobs import LibraryJobs
from newwave.api.routers import library, search, session, status, tracks
from newwave.api.security import AccessMiddleware, AccessPolicy
from newwave.api.schemas import ErrorOut
from newwave.config import Settings
from newwave.errors import NewWaveError
from newwave.models.registry import ActiveModels
from newwave.service import NewWave

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def create_app(settings: Settings | None = None, *, service: NewWave | None = None,
               models: ActiveModels | None = None,
               access: AccessPolicy | None = None) -> FastAPI:
    """The API over ``service`` (or a service opened from ``settings``). ``access``: who
    may connect (``newwave serve`` always gives one; see ``newwave.api.security``)."""
    if service is None:
        if settings is None:
            raise TypeError("create_app needs settings or a service")
        service = NewWave.open(settings, models=models)
    app = FastAPI(title="NewWave", version=__version__,
                  description="Find music by description: by sound, by lyrics, or both.",
                  responses={400: {"model": ErrorOut}, 404: {"model": ErrorOut},
                             422: {"model": ErrorOut}, 503: {"model": ErrorOut}})
    app.state.service = service
    app.state.jobs = LibraryJobs(service)
    app.state.access = access
    app.state.web_dir = WEB_DIR
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(NewWaveError, _newwave_error)
    for router in (search.router, tracks.router, library.router, status.router,
                   session.router):
        app.include_router(router)
    app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    if access is not None:
        app.add_middleware(AccessMiddleware, policy=access)
    return app


async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                        for e in exc.errors())
    return JSONResponse({"error": f"invalid request: {reasons}"}, status_code=422)


async def _newwave_error(_: Request, exc: NewWaveError) -> JSONResponse:
    headers = {"Retry-After": str(getattr(exc, "retry_after", 5))} \
        if exc.http_status == 503 else None
    return JSONResponse({"error": str(exc)}, status_code=exc.http_status, headers=headers)
