"""Signing in and out of the web client (only when the server requires a password)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse

from newwave.api.responses import ApiError
from newwave.api.security import (SESSION_COOKIE, SESSION_SECONDS, AccessPolicy,
                                  TooManyFailures, client_key)

router = APIRouter(tags=["session"])


@router.get("/login", include_in_schema=False)
def login_page(request: Request) -> FileResponse:
    return FileResponse(request.app.state.web_dir / "login.html", media_type="text/html")


@router.post("/login", status_code=303, include_in_schema=False)
def login(request: Request, user: Annotated[str, Form(max_length=200)],
          password: Annotated[str, Form(max_length=1000)]) -> RedirectResponse:
    """Check the password and set the session cookie; back to the form when wrong.
    429 with ``Retry-After`` after too many failures from the client's address (the
    password is then not checked at all)."""
    policy: AccessPolicy | None = request.app.state.access
    if policy is None or policy.credentials is None:
        return RedirectResponse("/", status_code=303)
    client = client_key(request.client.host if request.client else None)
    try:
        signed_in = policy.sign_in(client, user, password)
    except TooManyFailures as exc:
        raise ApiError(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    if not signed_in:
        return RedirectResponse("/login?failed=1", status_code=303)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION_COOKIE, policy.new_session(), max_age=SESSION_SECONDS,
                        httponly=True, samesite="strict", path="/")
    return response


@router.post("/logout", status_code=303, include_in_schema=False)
def logout() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
