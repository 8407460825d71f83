"""Signing in and out of the web client (only when the server requires a password)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse

from newwave.api.security import SESSION_COOKIE, SESSION_SECONDS, AccessPolicy

router = APIRouter(tags=["session"])


@router.get("/login", include_in_schema=False)
def login_page(request: Request) -> FileResponse:
    return FileResponse(request.app.state.web_dir / "login.html", media_type="text/html")


@router.post("/login", status_code=303, include_in_schema=False)
def login(request: Request, user: Annotated[str, Form(max_length=200)],
          password: Annotated[str, Form(max_length=1000)]) -> RedirectResponse:
    """Check the password and set the session cookie; back to the form when wrong."""
    policy: AccessPolicy | None = request.app.state.access
    if policy is None or policy.credentials is None:
        return RedirectResponse("/", status_code=303)
    if not policy.password_matches(user, password):
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
