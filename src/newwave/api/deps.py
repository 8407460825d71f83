"""What the routes share: the service, typed parameters, and the filter parameters built
from ``TrackFilter``'s own field definitions (the CLI builds its options from the same)."""

from __future__ import annotations

import inspect
import typing
from typing import Annotated

from fastapi import Depends, Header, Path, Query, Request

from newwave.catalog import TrackFilter
from newwave.service import NewWave

SQLITE_MAX_INT = 2**63 - 1  # larger integers overflow SQLite: refuse them with a 422


def get_service(request: Request) -> NewWave:
    return request.app.state.service


def _filter_dependency() -> typing.Callable[..., TrackFilter]:
    parameters = []
    for option in TrackFilter.options():
        query = Query(description=option.help, ge=option.ge, le=option.le,
                      max_length=200 if option.type == str | None else None,
                      pattern=option.pattern)
        parameters.append(inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY,
                                            default=None,
                                            annotation=Annotated[option.type, query]))

    def track_filter(**values: typing.Any) -> TrackFilter:
        return TrackFilter(**values)

    track_filter.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return track_filter


Service = Annotated[NewWave, Depends(get_service)]
Filters = Annotated[TrackFilter, Depends(_filter_dependency())]
Q = Annotated[str, Query(min_length=1, max_length=500, description="What to look for.")]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=10_000)]
Accept = Annotated[str, Header()]
TrackId = Annotated[int, Path(ge=1, le=SQLITE_MAX_INT, description="A track's id.")]
JobId = Annotated[int, Path(ge=1, le=SQLITE_MAX_INT, description="A job's id.")]
