"""Shaping search results and errors as HTTP answers."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from newwave.api.schemas import HitOut, QueryLine, SearchOut, SummaryLine
from newwave.catalog import Catalog
from newwave.catalog.models import TrackDescriptors
from newwave.search import SearchResult

NDJSON = "application/x-ndjson"
# What a search route answers: JSON (SearchOut), or NDJSON lines when asked for.
SEARCH_RESPONSES: dict[int | str, dict] = {200: {"content": {NDJSON: {}}, "description": (
    "JSON, or NDJSON with `Accept: application/x-ndjson`: a query line, one line per hit, "
    "a summary line")}}


class ApiError(HTTPException):
    """An error answered as ``{"error": reason}`` with its status code."""


def search_answer(result: SearchResult, limit: int, offset: int, stream: bool,
                  catalog: Catalog) -> Response:
    """JSON, or NDJSON: a query line, one line per hit, then a summary line. Each hit's
    track carries its descriptors, read from ``catalog`` in one query."""
    descriptors = catalog.descriptors(hit.track.id for hit in result.hits)
    if not stream:
        return JSONResponse(SearchOut.of(result, descriptors).model_dump())
    return StreamingResponse(_ndjson(result, limit, offset, descriptors), media_type=NDJSON)


def _ndjson(result: SearchResult, limit: int, offset: int,
            descriptors: dict[int, TrackDescriptors]) -> Iterator[bytes]:
    yield _line(QueryLine(mode=result.mode, query=result.query, limit=limit, offset=offset))
    for hit in result.hits:
        yield _line(HitOut.of(hit, descriptors.get(hit.track.id)))
    yield _line(SummaryLine(returned=len(result.hits), candidates=result.candidates,
                            notes=result.notes, elapsed_ms=result.elapsed_ms))


def _line(model: object) -> bytes:
    return (json.dumps(model.model_dump(), ensure_ascii=False) + "\n").encode("utf-8")
