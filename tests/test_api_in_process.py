"""The API's recording limits and track serving, in the test process.

A FastAPI ``TestClient`` over a real :class:`NewWave` service on a copy of the synthetic
library: scanned only for serving files, and also embedded (musicnn, in the service's
worker process) and indexed in FAISS for searching by a recording. The same routes as
``tests/test_api.py``'s live server, but run in the test process, where a mutation
tester can see them (``make mutation GROUPS="api_search_limit api_track_serving"``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import SR, tone
from newwave.api import create_app
from newwave.audio import decode
from newwave.audio.encode import write_audio
from newwave.catalog import TrackRecord
from newwave.config import Settings
from newwave.models.registry import ActiveModels
from newwave.service import NewWave

MiB = 1 << 20


def serve(base: Path, template: Path, models: tuple | None = None):
    """(client, service, library folder, {title: track id}) over a copy of the library,
    scanned, and embedded and indexed when given the (text encoder, audio model)."""
    library = base / "library"
    shutil.copytree(template, library)
    settings = Settings.load(data_dir=base / "data")
    active = ActiveModels(settings)
    if models:
        active.text_encoder, active.audio_model = models
    service = NewWave.open(settings, models=active)
    service.update([library], embed=models is not None)
    ids = {t.title: t.id for t in service.catalog.tracks()}
    with TestClient(create_app(service=service)) as client:
        yield client, service, library, ids
    service.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory, synthetic_library_template: Path):
    """The library scanned only: serving files needs no model and no vector."""
    yield from serve(tmp_path_factory.mktemp("api-scanned"), synthetic_library_template)


@pytest.fixture(scope="module")
def indexed_api(tmp_path_factory, synthetic_library_template: Path, text_encoder, musicnn):
    """The library scanned, embedded (musicnn, in the service's worker) and indexed."""
    yield from serve(tmp_path_factory.mktemp("api-indexed"), synthetic_library_template,
                     (text_encoder, musicnn))


# -- track serving -----------------------------------------------------------------------

# The synthetic library writes one format per piece (newwave.demo.synth.FORMATS). The
# types are the registered ones: audio/flac (RFC 9639), audio/mpeg (RFC 3003), audio/ogg
# (RFC 5334; Opus in Ogg adds its codecs parameter, RFC 7845), audio/mp4 (RFC 4337) and
# audio/wav, not whatever a guess from the file name would give (audio/x-wav, ...).
MEDIA_TYPES = {"Rainy Window.flac": "audio/flac", "Warehouse Pulse.mp3": "audio/mpeg",
               "Open Road.ogg": "audio/ogg", "Drift.m4a": "audio/mp4",
               "Midnight Strings.opus": "audio/ogg; codecs=opus",
               "Breakbeat Rush.wav": "audio/wav"}


def test_every_track_is_served_whole_with_its_media_type(api) -> None:
    client, _, library, ids = api
    for name, media_type in MEDIA_TYPES.items():
        response = client.get(f"/tracks/{ids[Path(name).stem]}/audio")
        assert response.status_code == 200, name
        assert response.headers["content-type"] == media_type, name
        assert response.content == next(library.rglob(f"* {name}")).read_bytes(), name


@pytest.mark.parametrize("name", ["take.mka", "take.html"])
def test_a_format_without_a_registered_type_is_sent_as_bytes(api, tmp_path: Path,
                                                              name: str) -> None:
    """A catalogued file in a format the type table does not list (written by another
    tool) is still served, as application/octet-stream: the file name never picks the
    type (a guess would send "take.html" as text/html, a page a browser renders from
    NewWave's origin)."""
    client, service, _, _ = api
    path = tmp_path / name
    path.write_bytes(b"\x1a\x45\xdf\xa3 <p>not really audio</p>")
    track_id = service.catalog.save_track(TrackRecord(
        path=str(path), root_id=None, content_hash=name, size=path.stat().st_size,
        mtime_ns=path.stat().st_mtime_ns, format=path.suffix[1:], title=name), None)
    try:
        response = client.get(f"/tracks/{track_id}/audio")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.content == path.read_bytes()
    finally:
        service.catalog.mark_missing([track_id])


def test_a_track_marked_missing_is_not_served(api) -> None:
    """A rescan marked the file vanished: its audio and detail answer 404 with the same
    reason as an unknown id, although a file is at the old path again."""
    client, service, library, ids = api
    track_id = ids["Open Road"]
    path = next(library.rglob("* Open Road.ogg"))
    assert client.get(f"/tracks/{track_id}/audio").status_code == 200
    service.catalog.mark_missing([track_id])
    try:
        for route in (f"/tracks/{track_id}/audio", f"/tracks/{track_id}"):
            response = client.get(route)
            assert (response.status_code, response.json()) == \
                (404, {"error": f"no track with id {track_id}"}), route
    finally:
        stat = path.stat()
        service.catalog.touch_track(track_id, size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    assert client.get(f"/tracks/{track_id}/audio").status_code == 200


def test_an_unknown_track_is_a_404(api) -> None:
    client, _, _, ids = api
    unknown = max(ids.values()) + 1000
    response = client.get(f"/tracks/{unknown}/audio")
    assert (response.status_code, response.json()) == \
        (404, {"error": f"no track with id {unknown}"})


def test_a_file_gone_since_the_last_scan_is_a_404(api) -> None:
    client, _, library, ids = api
    track_id = ids["Drift"]
    path = next(library.rglob("* Drift.m4a"))
    parked = path.with_name("parked.bin")
    path.rename(parked)
    try:
        response = client.get(f"/tracks/{track_id}/audio")
        assert (response.status_code, response.json()) == \
            (404, {"error": f"the file of track {track_id} is gone; rescan the library"})
    finally:
        parked.rename(path)
    assert client.get(f"/tracks/{track_id}/audio").content == path.read_bytes()


# -- search by a recording ---------------------------------------------------------------


@pytest.fixture(scope="module")
def recording(indexed_api, tmp_path_factory) -> bytes:
    """4 s of Warehouse Pulse (from 0.5 s in) as a WAV upload."""
    _, _, library, _ = indexed_api
    path = tmp_path_factory.mktemp("recording") / "recording.wav"
    snippet = decode(next(library.rglob("* Warehouse Pulse.mp3")), SR, offset_seconds=0.5,
                     max_seconds=4.0)
    write_audio(path, snippet, SR)
    return path.read_bytes()


def by_audio(client: TestClient, data: bytes, **params) -> object:
    headers = {"Accept": params.pop("accept")} if "accept" in params else {}
    return client.post("/search/by-audio", params=params, headers=headers,
                       files={"file": ("recording.wav", data, "audio/wav")})


def test_a_recording_finds_its_track_and_pages(indexed_api, recording: bytes) -> None:
    client, _, _, ids = indexed_api
    first = by_audio(client, recording, limit=3)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json"
    hits = first.json()["hits"]
    # 3 asked for, of 6 tracks; a snippet of a track is nearest to that track.
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["track"]["id"] == ids["Warehouse Pulse"]
    # offset 1, limit 2: ranks 2 and 3 of the same ranking.
    page = by_audio(client, recording, limit=2, offset=1).json()["hits"]
    assert [(h["rank"], h["track"]["id"]) for h in page] == \
        [(h["rank"], h["track"]["id"]) for h in hits[1:3]]


def test_a_recording_search_takes_the_filters(indexed_api, recording: bytes) -> None:
    client, _, _, ids = indexed_api
    # The library has two tracks by Mira Vale (Rainy Window, Drift); the recording is of
    # a Unit 7 track, so the filter, not the sound, decides who is in the answer.
    found = by_audio(client, recording, artist="mira vale", limit=10).json()["hits"]
    assert sorted(h["track"]["id"] for h in found) == sorted([ids["Rainy Window"],
                                                                ids["Drift"]])


def test_a_recording_search_streams_ndjson_when_asked(indexed_api, recording: bytes) -> None:
    client, _, _, _ = indexed_api
    response = by_audio(client, recording, limit=2, offset=1, accept="application/x-ndjson")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[0] == {"type": "query", "mode": "by-audio", "query": None, "limit": 2,
                        "offset": 1}
    assert [(line["type"], line["rank"]) for line in lines[1:3]] == [("hit", 2), ("hit", 3)]
    assert lines[3]["type"] == "summary" and lines[3]["returned"] == 2 and len(lines) == 4


def test_recordings_over_two_minutes_are_refused(indexed_api, tmp_path: Path) -> None:
    client, _, _, _ = indexed_api
    rate = 8000  # 125 s of 16-bit mono at 8 kHz: 2 MB, far under the upload cap
    long = tmp_path / "long.wav"
    write_audio(long, tone(125.0, sr=rate), rate)
    refused = by_audio(client, long.read_bytes())
    assert (refused.status_code, refused.json()) == \
        (422, {"error": "the recording is longer than 120 s; send a shorter snippet"})


def test_uploads_over_20_mib_are_refused_and_20_mib_is_not(indexed_api) -> None:
    """The cap is 20 MiB (20 * 2**20 bytes) inclusive: one byte more is refused before
    anything is decoded; exactly 20 MiB of zeros gets past the cap to the decoder, which
    cannot read it."""
    client, _, _, _ = indexed_api
    over = by_audio(client, bytes(20 * MiB + 1))
    assert (over.status_code, over.json()) == \
        (413, {"error": "upload is over 20 MB; send a shorter recording"})
    at_cap = by_audio(client, bytes(20 * MiB))
    assert at_cap.status_code == 422 and "cannot decode" in at_cap.json()["error"]

