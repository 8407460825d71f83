"""Access control against real server processes: hosts, origins, passwords, headers."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from conftest import PASSWORD


def test_cross_origin_writes_are_refused_and_same_origin_ones_pass(live_server) -> None:
    url, _, _ = live_server
    track_id = httpx.get(f"{url}/search/audio", params={"q": "piano"}).json()["hits"][0]["track"]["id"]
    body = {"track_id": track_id, "kind": "play"}
    evil = httpx.post(f"{url}/library/scan", headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and evil.json() == {"error": "cross-origin request refused"}
    referer = httpx.post(f"{url}/feedback", json=body,
                         headers={"Referer": "http://evil.example/page"})
    assert referer.status_code == 403
    own = httpx.post(f"{url}/feedback", json=body, headers={"Origin": url})
    assert own.status_code == 201
    # Fetch metadata wins where a browser sends it (its Origin may then be "null").
    site = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    assert httpx.post(f"{url}/feedback", json=body, headers=site).status_code == 201
    cross = {"Origin": url, "Sec-Fetch-Site": "cross-site"}
    assert httpx.post(f"{url}/feedback", json=body, headers=cross).status_code == 403
    assert httpx.post(f"{url}/feedback", json=body).status_code == 201  # not a browser


def test_unknown_host_names_are_refused(live_server) -> None:
    url, _, _ = live_server
    rebinding = httpx.get(f"{url}/stats", headers={"Host": "attacker.example"})
    assert rebinding.status_code == 421 and "attacker.example" in rebinding.json()["error"]
    for host in ("localhost", "127.0.0.1", "192.168.1.20"):  # names and addresses it serves
        assert httpx.get(f"{url}/stats", headers={"Host": host}).status_code == 200


def test_every_answer_carries_security_headers(live_server) -> None:
    url, _, _ = live_server
    for response in (httpx.get(f"{url}/"), httpx.get(f"{url}/tracks/99999")):
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_a_network_bind_needs_a_password(tmp_path: Path) -> None:
    env = {**os.environ, "NEWWAVE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "300"}
    env.pop("NEWWAVE_PASSWORD", None)
    result = subprocess.run([sys.executable, "-m", "newwave.cli", "serve", "--host", "0.0.0.0",
                             "--port", "1"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1 and "set a password" in result.stderr


def test_password_protects_everything_but_the_login_page(secured_server) -> None:
    url, data_dir = secured_server
    assert httpx.get(f"{url}/stats").status_code == 401
    assert httpx.get(f"{url}/login").status_code == 200
    page = httpx.get(f"{url}/", headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/login"
    basic = base64.b64encode(f"newwave:{PASSWORD}".encode()).decode()
    assert httpx.get(f"{url}/stats", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    wrong = base64.b64encode(b"newwave:guess").decode()
    assert httpx.get(f"{url}/stats", headers={"Authorization": f"Basic {wrong}"}).status_code == 401

    failed = httpx.post(f"{url}/login", data={"user": "newwave", "password": "guess"})
    assert failed.status_code == 303 and failed.headers["location"] == "/login?failed=1"
    assert "set-cookie" not in failed.headers
    signed_in = httpx.post(f"{url}/login", data={"user": "newwave", "password": PASSWORD})
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    with httpx.Client(base_url=url, cookies=signed_in.cookies) as client:
        assert client.get("/stats").status_code == 200
    forged = httpx.get(f"{url}/stats", cookies={"newwave_session": "newwave|9999999999|00"})
    assert forged.status_code == 401

    # Stored for the next start, readable by its owner only, and never in clear text.
    stored = data_dir / "auth.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "secret.key").stat().st_mode) == 0o600
    assert PASSWORD not in stored.read_text()


# -- Sign-in rate limit --------------------------------------------------------------------
# The server-level tests share the session's ``secured_server`` with the tests above, so
# each one talks to it from its own loopback address (Linux routes all of 127.0.0.0/8 to
# the loopback interface): the limit is per address, and theirs come from 127.0.0.1.

import pytest  # noqa: E402

from newwave.api.security import (LOGIN_MAX_FAILURES, LOGIN_WINDOW_SECONDS,  # noqa: E402
                                  AccessPolicy, Credentials, LoginLimiter, TooManyFailures,
                                  client_key)

WRONG = {"user": "newwave", "password": "guess"}
RIGHT = {"user": "newwave", "password": PASSWORD}


def _from_address(url: str, address: str) -> httpx.Client:
    """A client whose connections come from ``address``."""
    return httpx.Client(base_url=url, timeout=30,
                        transport=httpx.HTTPTransport(local_address=address))


def _basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"newwave:{password}".encode()).decode()}


def test_password_guessing_is_refused_with_429_after_the_limit(secured_server) -> None:
    url, _ = secured_server
    with _from_address(url, "127.0.0.2") as guesser, _from_address(url, "127.0.0.3") as other:
        for _ in range(LOGIN_MAX_FAILURES):
            failed = guesser.post("/login", data=WRONG)
            assert failed.status_code == 303 and failed.headers["location"] == "/login?failed=1"
        limited = guesser.post("/login", data=WRONG)
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/json"
        assert limited.json()["error"].startswith("too many failed sign-ins from this address")
        retry_after = int(limited.headers["retry-after"])
        assert 0 < retry_after <= LOGIN_WINDOW_SECONDS
        assert limited.headers["x-content-type-options"] == "nosniff"
        # The right password is not even checked while the address is blocked, in the
        # form or as Basic credentials.
        right = guesser.post("/login", data=RIGHT)
        assert right.status_code == 429 and "set-cookie" not in right.headers
        assert "retry-after" in right.headers
        basic = guesser.get("/stats", headers=_basic(PASSWORD))
        assert basic.status_code == 429 and int(basic.headers["retry-after"]) <= retry_after
        assert guesser.get("/stats", headers=_basic("guess")).status_code == 429

        # Other addresses are unaffected, and a session cookie (no password to guess)
        # works even from the blocked address.
        signed_in = other.post("/login", data=RIGHT)
        assert signed_in.status_code == 303 and "set-cookie" in signed_in.headers
        assert other.get("/stats", headers=_basic(PASSWORD)).status_code == 200
        assert other.post("/login", data=WRONG).headers["location"] == "/login?failed=1"
        guesser.cookies.set("newwave_session", signed_in.cookies["newwave_session"])
        assert guesser.get("/stats").status_code == 200


def test_failed_basic_credentials_count_and_a_success_clears_the_count(secured_server) -> None:
    url, _ = secured_server
    with _from_address(url, "127.0.0.4") as client:
        for _ in range(LOGIN_MAX_FAILURES - 1):
            assert client.get("/stats", headers=_basic("guess")).status_code == 401
        assert client.post("/login", data=RIGHT).status_code == 303  # clears the count
        # Without the reset the next failure would be the limit's last one.
        for _ in range(LOGIN_MAX_FAILURES):
            assert client.get("/stats", headers=_basic("guess")).status_code == 401
        assert client.get("/stats", headers=_basic("guess")).status_code == 429
        assert client.post("/login", data=RIGHT).status_code == 429


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _blocked_for(limiter: LoginLimiter, client: str) -> int | None:
    try:
        limiter.check(client)
    except TooManyFailures as exc:
        return exc.retry_after
    return None


def test_the_limit_is_a_sliding_window() -> None:
    clock = Clock()
    limiter = LoginLimiter(max_failures=3, window=100, clock=clock)
    for _ in range(3):
        assert _blocked_for(limiter, "a") is None
        limiter.failed("a")
        clock.now += 10  # failures at 1000, 1010, 1020
    assert _blocked_for(limiter, "a") == 70  # the first leaves the window at 1100
    clock.now = 1099.5
    assert _blocked_for(limiter, "a") == 1  # rounded up, never 0
    clock.now = 1100
    assert _blocked_for(limiter, "a") is None  # one failure left the window: one more try
    limiter.failed("a")
    assert _blocked_for(limiter, "a") == 10  # until 1010's leaves
    limiter.succeeded("a")
    assert _blocked_for(limiter, "a") is None and len(limiter) == 0
    with pytest.raises(ValueError):
        LoginLimiter(max_failures=0)


def test_the_limiter_memory_is_bounded_when_addresses_rotate() -> None:
    clock = Clock()
    limiter = LoginLimiter(max_failures=3, window=100, max_clients=50, clock=clock)
    for n in range(10_000):  # an attacker rotating addresses, several guesses each
        for _ in range(2):
            limiter.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
        clock.now += 0.001
    assert len(limiter) == 50
    assert all(len(times) <= 3 for times in limiter._failures.values())
    assert len(limiter._overflow) <= 3
    # The extra addresses shared one overflow bucket, which is full: an address not
    # remembered is blocked; remembered ones keep their own count (2 of 3).
    assert _blocked_for(limiter, "192.0.2.1") is not None
    assert _blocked_for(limiter, "10.0.0.0") is None
    # Once the window has passed, the expired are forgotten first.
    clock.now += 101
    assert _blocked_for(limiter, "192.0.2.1") is None
    limiter.failed("192.0.2.1")
    assert len(limiter) == 1 and _blocked_for(limiter, "192.0.2.1") is None


def test_the_limiter_is_thread_safe() -> None:
    import threading

    limiter = LoginLimiter(max_failures=1000, window=3600, max_clients=64)

    def hammer(worker: int) -> None:
        for n in range(2000):
            limiter.failed(f"client-{(worker * 7 + n) % 100}")
            try:
                limiter.check(f"client-{n % 100}")
            except TooManyFailures:
                pass
            if n % 50 == 0:
                limiter.succeeded(f"client-{n % 100}")

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(limiter) <= 64
    counted = sum(len(times) for times in limiter._failures.values()) + len(limiter._overflow)
    assert 0 < counted <= 8 * 2000


def test_client_keys_group_an_ipv6_host_by_its_slash_64() -> None:
    assert client_key("192.168.1.20") == "192.168.1.20"
    assert client_key("::ffff:192.168.1.20") == "192.168.1.20"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == \
        "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key(None) == "unknown"


def test_passwords_are_compared_whatever_their_lengths() -> None:
    policy = AccessPolicy(frozenset(), Credentials("newwave", PASSWORD))
    assert policy.password_matches("newwave", PASSWORD)
    for user, password in (("newwave", PASSWORD[:-1]), ("newwave", PASSWORD + "x"),
                           ("newwav", PASSWORD), ("", ""), ("newwave", "é" * 500)):
        assert not policy.password_matches(user, password)
    assert not AccessPolicy(frozenset(), None).password_matches("newwave", PASSWORD)


def test_a_blocked_address_may_sign_in_again_once_the_window_has_passed(tmp_path: Path) -> None:
    """The real app in process, with the limiter's clock in the test's hands: the block
    lifts when the oldest failure leaves the window, and an IPv6 host counts by its /64."""
    from starlette.testclient import TestClient

    from newwave.api import create_app
    from newwave.config import Settings
    from newwave.service import NewWave

    clock = Clock()
    policy = AccessPolicy.for_bind("127.0.0.1", credentials=Credentials("newwave", PASSWORD))
    policy = AccessPolicy(policy.allowed_hosts, policy.credentials, b"key",
                          LoginLimiter(max_failures=2, window=60, clock=clock))
    with NewWave.open(Settings.load(data_dir=tmp_path / "data")) as service:
        app = create_app(service=service, access=policy)

        def client(address: str) -> TestClient:
            return TestClient(app, base_url="http://127.0.0.1", follow_redirects=False,
                              client=(address, 5000))

        first, same_host = client("2001:db8::1"), client("2001:db8::2")
        neighbour = client("2001:db8:0:1::1")
        assert first.post("/login", data=WRONG).status_code == 303
        clock.now += 30
        assert same_host.post("/login", data=WRONG).status_code == 303
        refused = first.post("/login", data=RIGHT)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
        assert refused.json() == {
            "error": "too many failed sign-ins from this address; try again in 30 s"}
        assert same_host.get("/stats", headers=_basic(PASSWORD)).status_code == 429
        assert neighbour.post("/login", data=RIGHT).status_code == 303  # another /64
        clock.now += 30  # the first failure leaves the window: one more try
        assert first.post("/login", data=WRONG).status_code == 303
        assert first.post("/login", data=RIGHT).headers["retry-after"] == "30"
        clock.now += 30
        assert first.post("/login", data=RIGHT).status_code == 303
        assert len(policy.limiter) == 0  # the success cleared the /64's count
