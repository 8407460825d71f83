"""The API through a real server process on loopback."""

from __future__ import annotations

import io
import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from conftest import SR, tone
from newwave.audio.encode import write_audio


@pytest.fixture(scope="module")
def api(live_server):
    url, data_dir, library = live_server
    with httpx.Client(base_url=url, timeout=120) as client:
        yield client, data_dir, library


def track_id(client: httpx.Client, title: str) -> int:
    hits = client.get("/search/audio", params={"q": "music", "limit": 100,
                                                "min_duration": 0}).json()["hits"]
    return next(h["track"]["id"] for h in hits if h["track"]["title"] == title)


def test_health_stats_and_openapi(api) -> None:
    client, _, _ = api
    assert client.get("/health").json()["tracks"] == 6
    stats = client.get("/stats").json()
    assert stats["tracks"] == 6 and stats["with_lyrics"] == 3 and stats["audio_model"] == "musicnn"
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search/audio", "/search/lyrics", "/search/combined", "/search/by-audio",
            "/tracks/{track_id}", "/tracks/{track_id}/audio", "/tracks/{track_id}/cover",
            "/tracks/{track_id}/similar", "/feedback", "/library/scan", "/jobs/{job_id}",
            "/health", "/stats"} <= set(paths)


def test_json_search_modes(api) -> None:
    client, _, _ = api
    audio = client.get("/search/audio", params={"q": "solo piano", "limit": 2})
    assert audio.status_code == 200 and audio.headers["content-type"] == "application/json"
    body = audio.json()
    assert body["hits"][0]["track"]["title"] == "Rainy Window"
    assert body["hits"][0]["track"]["audio_url"].endswith("/audio")
    lyrics = client.get("/search/lyrics", params={"q": "leaving my hometown", "limit": 1}).json()
    assert lyrics["hits"][0]["track"]["title"] == "Open Road"
    assert "lyrics" in lyrics["hits"][0]["scores"]
    unit7 = client.get("/search/audio", params={"q": "drums", "artist": "unit 7"}).json()
    assert {h["track"]["artist"] for h in unit7["hits"]} == {"Unit 7"}


def test_combined_streams_ndjson_in_order(api) -> None:
    client, _, _ = api
    with client.stream("GET", "/search/combined",
                       params={"q": "driving techno for the club", "limit": 4}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert lines[0] == {"type": "query", "mode": "combined",
                        "query": "driving techno for the club", "limit": 4, "offset": 0}
    hits, summary = lines[1:-1], lines[-1]
    assert [h["type"] for h in hits] == ["hit"] * 4 and [h["rank"] for h in hits] == [1, 2, 3, 4]
    assert hits[0]["track"]["title"] == "Warehouse Pulse"
    assert summary["type"] == "summary" and summary["returned"] == 4
    assert any("reciprocal-rank" in n for n in summary["notes"])
    # Other modes stream when asked; combined answers JSON when asked.
    streamed = client.get("/search/lyrics", params={"q": "love"},
                          headers={"Accept": "application/x-ndjson"})
    assert streamed.text.splitlines()[0].startswith('{"type": "query"')
    plain = client.get("/search/combined", params={"q": "love"},
                       headers={"Accept": "application/json"})
    assert "hits" in plain.json()
    page2 = client.get("/search/combined", params={"q": "driving techno for the club",
                                                   "limit": 2, "offset": 2},
                       headers={"Accept": "application/json"}).json()
    assert [h["track"]["id"] for h in page2["hits"]] == [h["track"]["id"] for h in hits[2:4]]


@pytest.mark.parametrize(("path", "params", "status"), [
    ("/search/audio", {}, 422),
    ("/search/audio", {"q": ""}, 422),
    ("/search/audio", {"q": "x" * 501}, 422),
    ("/search/audio", {"q": "piano", "limit": 0}, 422),
    ("/search/audio", {"q": "piano", "limit": "many"}, 422),
    ("/search/lyrics", {"q": "love", "offset": -1}, 422),
    ("/search/combined", {"q": "   "}, 422),
    ("/search/audio", {"q": "piano", "year_min": "recent"}, 422),
    ("/tracks/99999", {}, 404),
    ("/tracks/abc", {}, 422),
    ("/tracks/99999/similar", {}, 404),
    ("/jobs/99999", {}, 404),
])
def test_malformed_requests_get_a_reason(api, path: str, params: dict, status: int) -> None:
    client, _, _ = api
    response = client.get(path, params=params, headers={"Accept": "application/json"})
    assert response.status_code == status
    assert response.json()["error"]


def test_track_detail_similar_and_feedback(api) -> None:
    client, data_dir, _ = api
    strings = track_id(client, "Midnight Strings")
    detail = client.get(f"/tracks/{strings}").json()
    assert detail["title"] == "Midnight Strings" and "violin" in detail["lyrics"]
    similar = client.get(f"/tracks/{strings}/similar", params={"limit": 3}).json()
    assert strings not in [h["track"]["id"] for h in similar["hits"]]
    created = client.post("/feedback", json={"track_id": strings, "kind": "like",
                                              "query": "sad strings"})
    assert created.status_code == 201
    with sqlite3.connect(data_dir / "catalog.sqlite") as db:
        rows = db.execute("SELECT kind, query FROM feedback WHERE track_id = ?",
                          (strings,)).fetchall()
    assert ("like", "sad strings") in rows
    assert client.post("/feedback", json={"track_id": strings, "kind": "love"}).status_code == 422
    assert client.post("/feedback", json={"track_id": 99999, "kind": "like"}).status_code == 404
    assert client.post("/feedback", content=b"{not json",
                       headers={"content-type": "application/json"}).status_code == 422


def test_audio_streaming_with_ranges(api) -> None:
    client, _, library = api
    tid = track_id(client, "Warehouse Pulse")
    data = next(library.rglob("*Warehouse Pulse.mp3")).read_bytes()
    full = client.get(f"/tracks/{tid}/audio")
    assert full.status_code == 200 and full.content == data
    assert full.headers["content-type"] == "audio/mpeg" and full.headers["accept-ranges"] == "bytes"
    first = client.get(f"/tracks/{tid}/audio", headers={"Range": "bytes=0-99"})
    assert first.status_code == 206 and first.content == data[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{len(data)}"
    middle = client.get(f"/tracks/{tid}/audio", headers={"Range": "bytes=1000-1999"})
    assert middle.status_code == 206 and middle.content == data[1000:2000]
    suffix = client.get(f"/tracks/{tid}/audio", headers={"Range": "bytes=-500"})
    assert suffix.status_code == 206 and suffix.content == data[-500:]
    beyond = client.get(f"/tracks/{tid}/audio", headers={"Range": f"bytes={len(data) + 10}-"})
    assert beyond.status_code == 416
    opus = track_id(client, "Midnight Strings")
    assert client.get(f"/tracks/{opus}/audio", headers={"Range": "bytes=0-1"}) \
        .headers["content-type"].startswith("audio/ogg")


def test_covers_thumbnails_and_caching(api) -> None:
    client, _, _ = api
    tid = track_id(client, "Warehouse Pulse")  # folder art, 128 x 128
    original = client.get(f"/tracks/{tid}/cover")
    assert original.status_code == 200 and original.headers["content-type"] == "image/png"
    assert "max-age" in original.headers["cache-control"]
    assert Image.open(io.BytesIO(original.content)).size == (128, 128)
    thumb = client.get(f"/tracks/{tid}/cover", params={"size": 32})
    assert Image.open(io.BytesIO(thumb.content)).size == (32, 32)
    again = client.get(f"/tracks/{tid}/cover", params={"size": 32},
                       headers={"If-None-Match": thumb.headers["etag"]})
    assert again.status_code == 304
    assert client.get(f"/tracks/{tid}/cover", params={"size": 5}).status_code == 422


def test_upload_search_and_its_limits(api, tmp_path: Path) -> None:
    client, _, library = api
    snippet = library / "Unit 7" / "Night Shift"
    from newwave.audio import decode
    recording = tmp_path / "recording.wav"
    write_audio(recording, decode(next(snippet.glob("*Warehouse*")), SR, max_seconds=4.0), SR)
    found = client.post("/search/by-audio", files={"file": ("rec.wav", recording.read_bytes(),
                                                             "audio/wav")})
    assert found.status_code == 200
    assert found.json()["hits"][0]["track"]["title"] == "Warehouse Pulse"
    webm = tmp_path / "rec.opus"  # what browsers record: opus
    write_audio(webm, tone(4.0), SR)
    assert client.post("/search/by-audio", files={"file": ("rec.opus", webm.read_bytes(),
                                                           "audio/ogg")}).status_code == 200
    huge = client.post("/search/by-audio", files={"file": ("big.wav", b"\0" * (21 << 20))})
    assert huge.status_code == 413 and "MB" in huge.json()["error"]
    garbage = client.post("/search/by-audio", files={"file": ("x.webm", b"not audio" * 100)})
    assert garbage.status_code == 422 and "cannot decode" in garbage.json()["error"]
    short = tmp_path / "short.wav"
    write_audio(short, tone(0.5), SR)
    too_short = client.post("/search/by-audio", files={"file": ("s.wav", short.read_bytes())})
    assert too_short.status_code == 422 and "at least 3 s" in too_short.json()["error"]
    assert client.post("/search/by-audio").status_code == 422


@pytest.mark.parametrize("path", ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                                  "/..%2f..%2fetc%2fpasswd", "/tracks/1/../../../etc/passwd",
                                  "/static/../../../../etc/passwd", "/%2e%2e%5c%2e%2e%5cetc"])
def test_path_traversal_never_reaches_the_file_system(api, path: str) -> None:
    client, _, _ = api
    response = client.get(path)
    assert response.status_code in (404, 400, 422) and b"root:" not in response.content


def test_background_scan_reports_progress(api) -> None:
    client, _, library = api
    (library / "Unit 7" / "Night Shift" / "03 Extra.flac").write_bytes(b"")  # an error to find
    started = client.post("/library/scan")
    assert started.status_code == 202
    job_id = started.json()["id"]
    deadline = time.monotonic() + 120
    while (job := client.get(f"/jobs/{job_id}").json())["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert job["status"] == "done", job
    assert client.get("/stats").json()["errors"] >= 1


def test_recordings_over_two_minutes_are_refused(api, tmp_path: Path) -> None:
    client, _, _ = api
    rate = 8000  # small uploads: 125 s of 16-bit mono at 8 kHz is 2 MB, under the 20 MB cap
    long = tmp_path / "long.wav"
    write_audio(long, tone(125.0, sr=rate), rate)
    refused = client.post("/search/by-audio", files={"file": ("long.wav", long.read_bytes())})
    assert refused.status_code == 422
    assert "longer than 120 s" in refused.json()["error"]
    # Just under the limit is searched (the recording is a tone: any hits will do).
    under = tmp_path / "under.wav"
    write_audio(under, tone(118.0, sr=rate), rate)
    accepted = client.post("/search/by-audio", params={"limit": 2},
                           files={"file": ("under.wav", under.read_bytes())})
    assert accepted.status_code == 200, accepted.text
    assert len(accepted.json()["hits"]) == 2


def test_a_track_marked_missing_is_not_served(api) -> None:
    """The catalog says the file vanished (a rescan marked it): its audio, detail and
    similar routes answer 404 even though a file is at the old path again."""
    client, data_dir, library = api
    tid = track_id(client, "Open Road")
    assert client.get(f"/tracks/{tid}/audio").status_code == 200
    with sqlite3.connect(data_dir / "catalog.sqlite") as db:
        db.execute("UPDATE tracks SET missing_since = 1 WHERE id = ?", (tid,))
    try:
        for path in (f"/tracks/{tid}/audio", f"/tracks/{tid}", f"/tracks/{tid}/similar",
                     f"/tracks/{tid}/cover"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.json()["error"].startswith(f"no track with id {tid}")
    finally:
        with sqlite3.connect(data_dir / "catalog.sqlite") as db:
            db.execute("UPDATE tracks SET missing_since = NULL WHERE id = ?", (tid,))
    assert client.get(f"/tracks/{tid}/audio").status_code == 200


def test_a_file_gone_since_the_last_scan_is_a_404(api) -> None:
    client, _, library = api
    tid = track_id(client, "Drift")
    path = next(library.rglob("*Drift.m4a"))
    parked = path.with_name("parked.bin")
    path.rename(parked)
    try:
        gone = client.get(f"/tracks/{tid}/audio")
        assert gone.status_code == 404
        assert gone.json() == {"error": f"the file of track {tid} is gone; rescan the library"}
    finally:
        parked.rename(path)
    assert client.get(f"/tracks/{tid}/audio").content == path.read_bytes()
