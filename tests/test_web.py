"""The web client in a real browser: Debian's chromium driven by Playwright against a
live server on a generated library."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import skip_or_fail

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"



@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():  # CI runs as root, so `make browser` installs it there
        skip_or_fail("needs Debian's chromium (`apt-get install chromium`; `make test` "
                     "installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--autoplay-policy=no-user-gesture-required",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    url, _, _ = live_server
    # The server's CSP forbids eval, which Playwright's evaluate/wait_for_function use; the
    # sign-in test below runs the client under the real CSP.
    context = browser.new_context(viewport={"width": 1100, "height": 800}, bypass_csp=True)
    page = context.new_page()
    page.goto(url)
    yield page
    context.close()


def search(page, text: str) -> None:
    page.fill("#query", text)
    page.press("#query", "Enter")
    page.wait_for_selector(".hit")
    page.wait_for_selector("#status:has-text('tracks')")


def test_search_play_more_like_this_and_feedback(page, live_server) -> None:
    _, data_dir, _ = live_server
    search(page, "driving techno for the club")
    titles = page.locator(".hit .title").all_text_contents()
    assert titles[0] == "Warehouse Pulse" and len(titles) >= 3
    assert "techno" in page.locator(".hit .why").first.text_content()

    page.locator(".hit .play").first.click()
    page.wait_for_function("(() => { const a = document.querySelector('#audio');"
                           " return !a.paused && a.currentTime > 0.2; })()", timeout=20000)
    assert page.locator("#now-title").text_content() == "Warehouse Pulse"

    page.locator(".hit .like").first.click()
    page.wait_for_selector(".hit .like.sent")
    with sqlite3.connect(data_dir / "catalog.sqlite") as db:
        kinds = {k for (k,) in db.execute(
            "SELECT f.kind FROM feedback f JOIN tracks t ON t.id = f.track_id "
            "WHERE t.title = 'Warehouse Pulse'")}
    assert {"like", "play"} <= kinds

    page.locator(".hit .similar").first.click()
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Sounds like')")
    similar = page.locator(".hit .title").all_text_contents()
    assert "Warehouse Pulse" not in similar and similar[0] == "Breakbeat Rush"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-client.png"), full_page=True)


def test_modes_streaming_and_empty_results(page) -> None:
    page.select_option("#mode", "lyrics")
    search(page, "leaving the town where I grew up")
    assert page.locator(".hit .title").first.text_content() == "Open Road"
    page.select_option("#mode", "audio")
    page.fill("#query", "tax forms and spreadsheets")
    page.press("#query", "Enter")
    page.wait_for_function("document.querySelector('#status').textContent.includes('No matching')")
    assert "not understood by the sound model: 'tax forms', 'spreadsheets'" in \
        page.locator("#status").text_content()


def test_library_page_and_phone_screen(browser, live_server) -> None:
    url, _, _ = live_server
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  bypass_csp=True)
    page = context.new_page()
    page.goto(url)
    search(page, "calm ambient for studying")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing overflows sideways on a phone
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-client-phone.png"), full_page=True)
    page.click("text=Library")
    page.wait_for_selector("#stats dd")
    assert "Tracks" in page.locator("#stats").text_content()
    context.close()


def test_record_to_search_with_a_fake_microphone(page) -> None:
    """Chromium's fake capture device (a beep) goes through MediaRecorder -> upload."""
    page.click("#record-button")
    page.wait_for_function("document.querySelector('#record-button').classList.contains('recording')")
    page.wait_for_timeout(3500)
    page.click("#record-button")
    page.wait_for_function("document.querySelector('#status').textContent.includes('tracks')",
                           timeout=30000)
    assert page.locator(".hit").count() >= 1


def test_signing_in_to_a_password_protected_server(browser, secured_server) -> None:
    from conftest import PASSWORD

    url, _ = secured_server
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.goto(url)
    page.wait_for_url(f"{url}/login")  # redirected: no session yet
    page.fill("#password", "wrong")
    page.click("#login-button")
    page.wait_for_selector("#login-error:has-text('Wrong user or password')")
    page.fill("#password", PASSWORD)
    page.click("#login-button")
    page.wait_for_url(f"{url}/")
    search(page, "driving techno for the club")
    assert page.locator(".hit .title").first.text_content() == "Warehouse Pulse"
    context.close()
