"""Who may talk to the server, and from where (threat model: docs/security.md).

- **Host allow-list**: a DNS-rebinding page reaches a LAN server under the attacker's
  own domain name, so only loopback names, IP literals (rebinding needs a name), this
  machine's host names and configured names are accepted in the ``Host`` header.
- **Cross-origin writes**: a state-changing request (POST, PUT, PATCH, DELETE) that a
  browser marks as coming from another site (``Sec-Fetch-Site``, else ``Origin`` or
  ``Referer``) is refused, so a web page elsewhere cannot rescan the library or post
  feedback through the user's browser. Requests without these headers come from
  non-browser clients and pass.
- **One user and a password**, optional on loopback and required by default on other
  addresses: the web client signs in for a session cookie (HttpOnly, SameSite=Strict,
  signed with a local key); API clients may send HTTP Basic credentials. The password
  is stored encrypted with a local key (both files mode 0600), not hashed, because the
  Subsonic token scheme needs the password itself to check ``md5(password + salt)``.
- **Sign-in rate limit**: per client address (IPv6 by its /64), failed password checks
  (``POST /login`` and HTTP Basic) are counted over a sliding window; past the limit the
  address gets 429 with ``Retry-After``, and its passwords are not checked at all until
  the window has room again. A success clears the address's count.
- **Security headers** on every answer: a CSP without inline script, nosniff,
  no-referrer, no framing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import math
import os
import secrets
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newwave.errors import Unavailable

DEFAULT_USER = "newwave"
SESSION_COOKIE = "newwave_session"
SESSION_SECONDS = 30 * 24 * 3600
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
# Reachable without signing in: the login page and what it needs, and the health probe.
PUBLIC_PATHS = frozenset({"/login", "/logout", "/login.html", "/login.js", "/style.css",
                          "/health", "/favicon.ico"})
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
     b"media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
     b"frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Sign-in rate limit: this many failed password checks per client address in the window.
LOGIN_MAX_FAILURES = 5
LOGIN_WINDOW_SECONDS = 300.0
LOGIN_MAX_CLIENTS = 4096  # addresses remembered at once (memory bound)


class CredentialsError(Unavailable):
    """The stored password cannot be read (a damaged file or a changed key)."""


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


class CredentialStore:
    """The user and password of one library, encrypted with a key that never leaves
    ``<data dir>`` (``secret.key``; both files 0600)."""

    def __init__(self, data_dir: Path) -> None:
        self.key_path = data_dir / "secret.key"
        self.path = data_dir / "auth.json"

    def key(self) -> bytes:
        if not self.key_path.exists():
            self.key_path.parent.mkdir(parents=True, exist_ok=True)
            _write_private(self.key_path, base64.urlsafe_b64encode(secrets.token_bytes(32)))
        return self.key_path.read_bytes().strip()

    def save(self, credentials: Credentials) -> None:
        from cryptography.fernet import Fernet

        token = Fernet(self.key()).encrypt(credentials.password.encode("utf-8"))
        _write_private(self.path, json.dumps({"user": credentials.user,
                                              "password": token.decode("ascii")}).encode())

    def load(self) -> Credentials | None:
        if not self.path.exists():
            return None
        from cryptography.fernet import Fernet, InvalidToken

        try:
            stored = json.loads(self.path.read_text(encoding="utf-8"))
            password = Fernet(self.key()).decrypt(stored["password"].encode("ascii"))
            return Credentials(stored["user"], password.decode("utf-8"))
        except (OSError, ValueError, KeyError, InvalidToken) as exc:
            raise CredentialsError(
                f"{self.path}: cannot read the stored password ({type(exc).__name__}); set "
                "it again with `newwave serve --password ...`") from exc


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a file only its owner can read, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


class TooManyFailures(Exception):
    """Too many failed sign-ins from one client address; try again after
    ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins from this address; try again in "
                         f"{retry_after} s")
        self.retry_after = retry_after


class LoginLimiter:
    """Failed password checks per client, over a sliding window of ``window`` seconds.

    A client with ``max_failures`` failures in the window is *blocked* until the oldest
    of them leaves it. Memory is bounded: at most ``max_failures`` times for each of at
    most ``max_clients`` clients, whatever the number of addresses an attacker rotates
    through. Clients whose failures have all expired are forgotten first; when every
    remembered client is still live, failures from the others are counted together in
    one overflow bucket, and while that bucket is full, clients that are not remembered
    are blocked too (a distributed guesser gets ``max_failures`` guesses per window for
    all its extra addresses together, instead of evicting its own records; signed-in
    sessions are unaffected). Thread-safe: the login route runs in a thread pool, the
    Basic check on the event loop.
    """

    def __init__(self, max_failures: int = LOGIN_MAX_FAILURES,
                 window: float = LOGIN_WINDOW_SECONDS, max_clients: int = LOGIN_MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_failures < 1 or window <= 0 or max_clients < 1:
            raise ValueError("max_failures, window and max_clients must be positive")
        self.max_failures = max_failures
        self.window = window
        self.max_clients = max_clients
        self.clock = clock
        # Each client's failure times, in order of their last failure (oldest first).
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._overflow: deque[float] = deque(maxlen=max_failures)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many clients are remembered."""
        return len(self._failures)

    def check(self, client: str) -> None:
        """Raise :class:`TooManyFailures` when ``client`` may not try a password now."""
        with self._lock:
            now = self.clock()
            times = self._live(client, now)
            if times is None:
                self._expire(self._overflow, now)
                times = self._overflow
            if len(times) >= self.max_failures:
                wait = times[0] + self.window - now
                raise TooManyFailures(max(1, math.ceil(wait)))

    def failed(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            times = self._live(client, now)
            if times is None:
                self._forget_expired(now)
                if len(self._failures) >= self.max_clients:
                    self._overflow.append(now)
                    return
                times = self._failures[client] = deque(maxlen=self.max_failures)
            times.append(now)
            self._failures.move_to_end(client)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def _live(self, client: str, now: float) -> deque[float] | None:
        """The client's failures still in the window, or None (then forgotten)."""
        times = self._failures.get(client)
        if times is None:
            return None
        self._expire(times, now)
        if not times:
            del self._failures[client]
            return None
        return times

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window:
            times.popleft()

    def _forget_expired(self, now: float) -> None:
        # In order of the last failure, so the expired clients are at the front.
        while self._failures:
            oldest, times = next(iter(self._failures.items()))
            if times[-1] > now - self.window:
                break
            del self._failures[oldest]


def client_key(address: str | None) -> str:
    """Whom the rate limit counts: the client's IP address, an IPv6 client by its /64
    (one host usually holds a whole /64), an IPv4-mapped IPv6 address as IPv4."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(frozen=True)
class AccessPolicy:
    allowed_hosts: frozenset[str]  # host names (without port) besides IP literals
    credentials: Credentials | None  # None: no sign-in required
    session_key: bytes = b""
    limiter: LoginLimiter = field(default_factory=LoginLimiter, compare=False, repr=False)

    @classmethod
    def for_bind(cls, bind_host: str, *, credentials: Credentials | None,
                 extra_hosts: tuple[str, ...] = (), session_key: bytes = b"") -> AccessPolicy:
        names = {*LOOPBACK_NAMES, bind_host.lower(), *(h.lower() for h in extra_hosts)}
        hostname = socket.gethostname().lower()
        names |= {hostname, f"{hostname}.local"}
        return cls(frozenset(names), credentials, session_key)

    def host_allowed(self, host: str) -> bool:
        name = _strip_port(host).lower()
        if name in self.allowed_hosts:
            return True
        try:
            ipaddress.ip_address(name.strip("[]"))
            return True  # an address, not a name: DNS rebinding cannot forge it
        except ValueError:
            return False

    # -- sessions ------------------------------------------------------------------------

    def new_session(self, now: float | None = None) -> str:
        expires = int((now or time.time()) + SESSION_SECONDS)
        payload = f"{self.credentials.user}|{expires}"
        return f"{payload}|{self._sign(payload)}"

    def session_valid(self, value: str, now: float | None = None) -> bool:
        user, _, rest = value.partition("|")
        expires, _, signature = rest.partition("|")
        if self.credentials is None or user != self.credentials.user or not expires.isdigit():
            return False
        return hmac.compare_digest(signature, self._sign(f"{user}|{expires}")) and \
            int(expires) > (now or time.time())

    def _sign(self, payload: str) -> str:
        # The password is part of the key: changing it signs every session out.
        key = self.session_key + self.credentials.password.encode("utf-8")
        return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()

    def password_matches(self, user: str, password: str) -> bool:
        """Constant time: both names and both passwords are compared as SHA-256 digests
        (equal lengths), and both comparisons always run."""
        if self.credentials is None:
            return False
        user_ok = hmac.compare_digest(_digest(user), _digest(self.credentials.user))
        password_ok = hmac.compare_digest(_digest(password),
                                          _digest(self.credentials.password))
        return user_ok & password_ok

    def sign_in(self, client: str, user: str, password: str) -> bool:
        """Check a password for ``client`` (see :func:`client_key`) under the rate limit:
        :class:`TooManyFailures` without checking it when the client is blocked; a
        failure is counted, a success clears the count."""
        self.limiter.check(client)
        if self.password_matches(user, password):
            self.limiter.succeeded(client)
            return True
        self.limiter.failed(client)
        return False

    def basic_auth_valid(self, header: str, client: str = "unknown") -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return self.sign_in(client, user, password)


class AccessMiddleware:
    """Applies an :class:`AccessPolicy` to every HTTP request (pure ASGI, so streamed
    answers pass through untouched)."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        try:
            refusal = self._refusal(scope, headers, host)
        except TooManyFailures as exc:
            refusal = 429, str(exc), [(b"retry-after", str(exc.retry_after).encode())]
        if refusal is not None:
            await _send_json(send, *refusal)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope, headers: dict[str, str], host: str
                 ) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        if not self.policy.host_allowed(host):
            return 421, (f"host {_strip_port(host)!r} is not one this server answers to; add "
                         "it with `newwave serve --allow-host NAME`"), []
        if scope["method"] in WRITE_METHODS and not _same_origin(headers, host):
            return 403, "cross-origin request refused", []
        path = scope["path"]
        if self.policy.credentials is None or path in PUBLIC_PATHS or \
                self._signed_in(scope, headers):
            return None
        if scope["method"] == "GET" and "text/html" in headers.get("accept", ""):
            return 303, "sign in first", [(b"location", b"/login")]
        return 401, "sign in first (POST /login, or HTTP Basic credentials)", []

    def _signed_in(self, scope: Scope, headers: dict[str, str]) -> bool:
        """Raises :class:`TooManyFailures` for Basic credentials from a blocked client."""
        if "authorization" in headers:
            client = client_key((scope.get("client") or (None,))[0])
            return self.policy.basic_auth_valid(headers["authorization"], client)
        cookie = _cookie(headers.get("cookie", ""), SESSION_COOKIE)
        return cookie is not None and self.policy.session_valid(cookie)


def _same_origin(headers: dict[str, str], host: str) -> bool:
    """Whether a request comes from this server's own pages. Browsers say so in
    ``Sec-Fetch-Site`` (under ``Referrer-Policy: no-referrer`` their Origin for a form
    post is "null"); older ones by Origin or Referer; a request with none of them is
    not from a browser."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")  # "none": typed by the user
    source = headers.get("origin") or headers.get("referer")
    if source is None:
        return True
    if source == "null":
        return False
    return urlsplit(source).netloc.lower() == host.lower()


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def _strip_port(host: str) -> str:
    if host.startswith("["):  # [::1]:8000
        return host[:host.index("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _send_json(send: Send, status: int, reason: str,
                     extra: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"error": reason}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *extra,
                            *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})
