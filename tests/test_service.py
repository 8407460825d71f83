"""The application service's doors: update, search, errors, and a light start-up."""

from __future__ import annotations

import shutil
from dataclasses import replace
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from newwave.api import create_app
from newwave.config import Settings
from newwave.errors import Conflict, InvalidInput, NewWaveError, NotFound, Unavailable
from newwave.models.registry import ActiveModels
from newwave.service import NewWave, UpdateProgress

HEAVY = ("torch", "faiss", "transformers", "sentence_transformers", "onnxruntime", "uvicorn")


@pytest.fixture(scope="module")
def library(tmp_path_factory, synthetic_library_template: Path, text_encoder, musicnn):
    """(settings, models, library folder): the synthetic library, not yet indexed."""
    base = tmp_path_factory.mktemp("service")
    folder = base / "library"
    shutil.copytree(synthetic_library_template, folder)
    settings = Settings.load(data_dir=base / "data")
    models = ActiveModels(settings)
    models.text_encoder, models.audio_model = text_encoder, musicnn
    return settings, models, folder


class Recorder(UpdateProgress):
    def __init__(self) -> None:
        self.events: list[str] = []

    def scanning(self, root: Path) -> None:
        self.events.append("scanning")

    def scan_done(self, report) -> None:
        self.events.append("scan_done")

    def embedding(self, update) -> None:
        if not self.events or self.events[-1] != f"embed {update.stage}":
            self.events.append(f"embed {update.stage}")

    def syncing(self) -> None:
        self.events.append("syncing")


def test_update_scans_embeds_and_syncs_then_searches(library) -> None:
    settings, models, folder = library
    shown = Recorder()
    with NewWave.open(settings, models=models) as service:
        report = service.update([folder], progress=shown)
        # The synthetic library (newwave.demo.synth.PIECES): 6 tracks, 3 with lyrics (Rainy
        # Window, Open Road, Midnight Strings), each short enough for one window.
        assert [(s.added, s.failed) for s in report.scans] == [(6, 0)]
        assert (report.embedded.audio_embedded, report.embedded.lyrics_embedded) == (6, 3)
        assert report.index_sizes == {"audio-text": 6, "audio": 6, "lyrics": 3}
        assert shown.events == ["scanning", "scan_done", "embed audio", "embed lyrics",
                                "syncing"]
        assert service.search("solo piano", "audio", limit=1).hits[0].track.title == \
            "Rainy Window"
    with NewWave.open(settings, models=models) as service:  # a second run changes nothing
        again = service.update([folder])
        assert (again.scans[0].unchanged, again.embedded.audio_embedded,
                again.embedded.lyrics_embedded) == (6, 0, 0)
        assert service.find_track("Rainy") == service.catalog.find_tracks("Rainy Window")[0].id
        with pytest.raises(NotFound):
            service.find_track("no such title")


def test_every_domain_error_derives_from_one_base() -> None:
    from newwave.api.jobs import JobAlreadyRunning
    from newwave.audio import AudioDecodeError
    from newwave.catalog import SchemaError, VectorSpaceMismatch
    from newwave.config import ConfigError
    from newwave.demo.debian import DebianUnavailable
    from newwave.eval import DatasetError
    from newwave.library import ScanError
    from newwave.library.tags import TagReadError
    from newwave.models.musicnn import CheckpointError
    from newwave.models.text import ModelLoadError
    from newwave.search import SearchError, TrackNotFound
    from newwave.train.common import TrainingDataError

    families = {ConfigError: Unavailable, SchemaError: Unavailable, ModelLoadError: Unavailable,
                CheckpointError: Unavailable, DebianUnavailable: Unavailable,
                VectorSpaceMismatch: Conflict, JobAlreadyRunning: Conflict,
                AudioDecodeError: InvalidInput, ScanError: InvalidInput,
                TagReadError: InvalidInput, SearchError: InvalidInput,
                DatasetError: InvalidInput, TrainingDataError: InvalidInput,
                TrackNotFound: NotFound}
    for error, family in families.items():
        assert issubclass(error, family) and issubclass(error, NewWaveError), error


@pytest.fixture(scope="module")
def client(library):
    """The API in-process over the indexed library (the live-server tests cover HTTP)."""
    settings, models, folder = library
    service = NewWave.open(settings, models=models)
    service.update([folder])
    with TestClient(create_app(service=service)) as test_client:
        yield test_client
    service.close()


def test_api_maps_invalid_input_to_422(client: TestClient) -> None:
    response = client.get("/search/audio", params={"q": "   "})  # SearchError
    assert response.status_code == 422
    assert response.json() == {"error": "the query is empty; describe the music you want"}


def test_api_maps_not_found_to_404(client: TestClient) -> None:
    response = client.get("/tracks/4242/similar")  # TrackNotFound from the engine
    assert response.status_code == 404
    assert response.json() == {"error": "no track with id 4242"}


def test_api_maps_conflict_to_409(client: TestClient) -> None:
    service = client.app.state.service
    with service._update_lock:  # an update is in progress: the scan job waits behind it
        first = client.post("/library/scan")
        assert first.status_code == 202
        second = client.post("/library/scan")  # JobAlreadyRunning
    assert second.status_code == 409
    assert second.json()["error"].startswith("a library scan is already running (job "
                                             f"{first.json()['id']})")
    client.app.state.jobs.wait()
    assert service.catalog.job(first.json()["id"]).status == "done"


def test_api_maps_unavailable_to_503(tmp_path: Path) -> None:
    # A text model that cannot be loaded (ModelLoadError) and a fusion model file that is
    # not there (ConfigError): the operator must fix the settings; the client gets a 503.
    settings = Settings.load(data_dir=tmp_path / "data", text_model=str(tmp_path / "no-model"))
    with TestClient(create_app(settings)) as client:
        response = client.get("/search/lyrics", params={"q": "love"})
        assert response.status_code == 503 and response.headers["retry-after"] == "5"
        assert "no-model" in response.json()["error"]
    broken = replace(Settings.load(data_dir=tmp_path / "data2"),
                     fusion_model=str(tmp_path / "missing.pt"))
    with TestClient(create_app(broken)) as client:
        response = client.get("/search/combined", params={"q": "calm piano"})
        assert response.status_code == 503 and "missing.pt" in response.json()["error"]


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = ("import sys, newwave.cli; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == ""


def test_cli_prints_domain_errors_once_and_tracebacks_with_debug(tmp_path: Path) -> None:
    env_args = [sys.executable, "-m", "newwave.cli", "--data-dir", str(tmp_path / "d")]
    plain = subprocess.run([*env_args, "similar", "no such title"], capture_output=True,
                           text=True)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert "no track title contains 'no such title'" in plain.stderr
    debug = subprocess.run([*env_args[:3], "--debug", *env_args[3:], "similar", "nothing"],
                           capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "NotFound" in debug.stderr
