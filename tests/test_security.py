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
