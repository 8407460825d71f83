"""The one error family of NewWave.

Every error a user can cause or meet derives from :class:`NewWaveError`, and its message
is written for that user: it names the file, value or model concerned and what to do.
Front ends catch the base once: the CLI prints the message and exits 1 (a traceback only
with ``--debug``); the API answers ``{"error": message}`` with the family's status, so no
domain error can surface as a 500. The concrete errors live beside the code that raises
them (``ConfigError`` in config, ``AudioDecodeError`` in audio, ...) and derive from one
of the families below.
"""

from __future__ import annotations


class NewWaveError(Exception):
    """Base of every NewWave error; ``str(error)`` is the user-facing message."""

    http_status = 400


class InvalidInput(NewWaveError):
    """What was asked cannot be done as asked: a bad query, file, folder or data set."""

    http_status = 422


class NotFound(NewWaveError):
    """A track, job or file that was named does not exist."""

    http_status = 404


class Conflict(NewWaveError):
    """The request clashes with the current state (a job already running, vectors of
    another model)."""

    http_status = 409


class Unavailable(NewWaveError):
    """NewWave cannot serve this now: a model, the catalog or a tool is misconfigured or
    missing. The operator, not the request, has to change something."""

    http_status = 503
