"""Files that crash the decoder, and 7.1 audio, through the service and a live server."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from conftest import CRASH_MARKER, CRASH_MARKER_ENV, make_audio, tone
from newwave.config import Settings
from newwave.service import NewWave


def seven_one_wav(path: Path | None = None) -> bytes:
    """Eight channels of float audio (a 7.1 mix): the layout that crashed PyAV."""
    samples = np.stack([tone(4.0, 220.0 * (1 + c)) for c in range(8)], axis=1)
    buffer = io.BytesIO()
    sf.write(buffer, samples, 22050, format="WAV", subtype="FLOAT")
    if path is not None:
        path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def crashing_wav(path: Path) -> Path:
    """A valid short WAV with the test crash marker inside its first 64 KiB."""
    make_audio(path, seconds=0.5)
    path.write_bytes(path.read_bytes() + CRASH_MARKER.encode())
    return path


def test_crashing_and_multichannel_files_in_a_library(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(CRASH_MARKER_ENV, CRASH_MARKER)  # read by the worker processes
    library = tmp_path / "library"
    make_audio(library / "01 - Calm.flac", seconds=4.0)
    seven_one_wav(library / "02 - Surround.wav")
    crashing_wav(library / "03 - Crasher.wav")
    with NewWave.open(Settings.load(data_dir=tmp_path / "data")) as service:
        first = service.update([library])
        # Three files catalogued; two embed (7.1 included), the crasher is recorded.
        assert (first.scans[0].added, first.embedded.audio_embedded,
                first.embedded.audio_failed) == (3, 2, 1)
        failures = service.catalog.embed_failures()
        assert [(Path(path).name, error.endswith("decoder crashed: signal 11 (SIGSEGV)); "
                 "check that the file is a complete mp3/flac/ogg/opus/m4a/wav file, or "
                 "re-encode it")) for path, _, error in failures] == \
            [("03 - Crasher.wav", True)] * len(failures)
        # The next run skips the file until it changes, and the library stays searchable.
        again = service.update([library])
        assert (again.embedded.audio_embedded, again.embedded.audio_failed) == (0, 0)
        assert again.index_sizes["audio"] == 2


def test_uploads_that_crash_the_decoder_or_have_eight_channels(live_server) -> None:
    url, _, library = live_server
    crasher = crashing_wav(library.parent / "crash-upload.wav").read_bytes()
    answer = httpx.post(f"{url}/search/by-audio", files={"file": ("rec.wav", crasher)},
                        timeout=120)
    assert answer.status_code == 422 and "decoder crashed: signal 11" in answer.json()["error"]
    assert httpx.get(f"{url}/health").status_code == 200  # the server is still up
    surround = httpx.post(f"{url}/search/by-audio",
                          files={"file": ("surround.wav", seven_one_wav())}, timeout=120)
    assert surround.status_code == 200
    hits = surround.json()["hits"]
    assert hits and [hit["rank"] for hit in hits] == list(range(1, len(hits) + 1))
