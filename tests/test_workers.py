"""The supervised audio worker pool, with real worker processes, files and musicnn."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SR, make_audio
from newwave.audio import AudioDecodeError, decode
from newwave.audio.workers import (CRASH_MARKER_ENV, AudioWorkers, WorkerCrashed, WorkersBusy)

MARKER = "NEWWAVE-TEST-CRASH-3c1f"


@pytest.fixture(scope="module")
def pool() -> Iterator[AudioWorkers]:
    """One musicnn worker shared by the module (the model loads once)."""
    with AudioWorkers("musicnn", workers=1) as workers:
        yield workers


@pytest.fixture
def crash_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[AudioWorkers]:
    """A decode-only pool whose workers crash on files holding MARKER (the test hook)."""
    monkeypatch.setenv(CRASH_MARKER_ENV, MARKER)
    with AudioWorkers(workers=1) as workers:
        yield workers


def surround(path: Path, channels: int = 8, seconds: float = 3.0) -> Path:
    """A float WAV whose channels all differ (7.1 by default)."""
    t = np.arange(int(seconds * SR)) / SR
    planes = np.stack([0.1 * (1 + c % 3) * np.sin(2 * np.pi * (220 + 110 * c) * t)
                       for c in range(channels)], axis=1)
    sf.write(path, planes.astype(np.float32), SR, subtype="FLOAT")
    return path


def crashing_file(path: Path) -> Path:
    path.write_bytes(b"RIFF" + MARKER.encode() + bytes(4000))
    return path


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def open_fifo_writer(fifo: Path, timeout: float = 60.0) -> int:
    """The write end of ``fifo``, once a worker has opened it for reading (and so blocks
    on it until the test writes). Non-blocking opens fail until there is a reader."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"no worker opened {fifo}") from None
            time.sleep(0.02)
            continue
        os.set_blocking(fd, True)
        return fd


def test_decode_in_a_worker_equals_decode_in_process(pool: AudioWorkers, tmp_path: Path) -> None:
    for path in (make_audio(tmp_path / "a.mp3", seconds=3.0), surround(tmp_path / "7.1.wav"),
                 surround(tmp_path / "5.1.wav", channels=6)):
        np.testing.assert_array_equal(pool.decode(path, 16000), decode(path, 16000))
        np.testing.assert_array_equal(pool.decode(path, 8000, max_seconds=1.0),
                                      decode(path, 8000, max_seconds=1.0))
    upload = (tmp_path / "a.mp3").read_bytes()  # a bytes source, as the API receives it
    np.testing.assert_array_equal(pool.decode(upload, 16000), decode(tmp_path / "a.mp3", 16000))


def test_embed_in_a_worker_equals_musicnn_in_process(pool: AudioWorkers, musicnn, tmp_path: Path,
                                                     synthetic_library_template: Path) -> None:
    track = sorted(synthetic_library_template.rglob("*.ogg"))[0]
    for source in (track, surround(tmp_path / "7.1.wav")):
        embedded = pool.embed(source)
        waveform = decode(source, musicnn.sample_rate)
        expected = musicnn.embed_audio(waveform, musicnn.sample_rate)
        assert embedded.vectors.keys() == expected.keys() == {"audio", "audio-text"}
        for kind in expected:
            np.testing.assert_allclose(embedded.vectors[kind], expected[kind], atol=1e-5)
        assert embedded.seconds == pytest.approx(waveform.size / musicnn.sample_rate)
    upload = pool.embed(track.read_bytes(), max_seconds=2.0)
    assert upload.seconds == pytest.approx(2.0, abs=0.01)
    description = pool.model_description()
    assert description.sample_rate == musicnn.sample_rate
    assert description.spaces == musicnn.spaces


def test_undecodable_audio_raises_the_ordinary_error_and_keeps_the_worker(
        pool: AudioWorkers, tmp_path: Path) -> None:
    pool.decode(make_audio(tmp_path / "ok.wav"), 16000)
    before = pool.pids()
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"this is not audio at all" * 100)
    with pytest.raises(AudioDecodeError, match=r"broken\.mp3: cannot decode audio") as caught:
        pool.decode(broken, 16000)
    assert type(caught.value) is AudioDecodeError and caught.value.source == str(broken)
    with pytest.raises(AudioDecodeError, match="missing.ogg"):
        pool.embed(tmp_path / "missing.ogg")
    assert pool.pids() == before  # an error is an answer, not a crash


def test_a_crashing_file_is_reported_and_the_pool_goes_on(crash_pool: AudioWorkers,
                                                          tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    good = make_audio(tmp_path / "good.flac")
    expected = decode(good, 16000)
    np.testing.assert_array_equal(crash_pool.decode(good, 16000), expected)
    first = crash_pool.pids()
    bad = crashing_file(tmp_path / "bad.wav")
    with caplog.at_level(logging.WARNING, logger="newwave.audio"):
        with pytest.raises(WorkerCrashed) as caught:
            crash_pool.decode(bad, 16000)
    error = caught.value
    assert isinstance(error, AudioDecodeError) and error.source == str(bad)
    assert error.reason == "decoder crashed: signal 11 (SIGSEGV)" and error.signal == 11
    assert str(bad) in str(error)
    assert "retrying in a fresh worker" in caplog.text  # crashed once, retried, crashed again
    # The pool replaced the worker and serves the next call.
    np.testing.assert_array_equal(crash_pool.decode(good, 16000), expected)
    assert len(crash_pool.pids()) == 1 and crash_pool.pids() != first
    # An upload is named by the caller.
    with pytest.raises(WorkerCrashed, match=r"^recording\.webm: cannot decode audio \(decoder "
                                            r"crashed: signal 11 \(SIGSEGV\)\)"):
        crash_pool.decode(bad.read_bytes(), 16000, name="recording.webm")


def test_a_worker_killed_mid_embed_is_replaced_and_the_call_completes(
        pool: AudioWorkers, musicnn, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    long_file = make_audio(tmp_path / "long.wav", seconds=120.0, freq=330.0)
    pool.embed(make_audio(tmp_path / "short.wav"))  # the model is loaded before the kill
    (victim,) = pool.pids()
    results: list[object] = []
    call = threading.Thread(target=lambda: results.append(pool.embed(long_file)))
    with caplog.at_level(logging.WARNING, logger="newwave.audio"):
        call.start()
        time.sleep(1.0)  # decoding takes ~0.1 s, embedding 120 s of audio ~3 s
        assert call.is_alive(), "the embed finished before the kill; use a longer file"
        os.kill(victim, signal.SIGKILL)
        call.join(timeout=300)
    assert not call.is_alive()
    (embedded,) = results
    expected = musicnn.embed_audio(decode(long_file, musicnn.sample_rate), musicnn.sample_rate)
    for kind in expected:
        np.testing.assert_allclose(embedded.vectors[kind], expected[kind], atol=1e-5)
    assert f"audio worker {victim} ended (decoder crashed: signal 9 (SIGKILL))" in caplog.text
    assert victim not in pool.pids() and len(pool.pids()) == 1


def test_workers_busy_when_max_pending_calls_already_wait(tmp_path: Path) -> None:
    fifo = tmp_path / "slow.wav"  # the worker blocks reading it until the test writes
    os.mkfifo(fifo)
    audio = make_audio(tmp_path / "a.wav")
    results: dict[str, np.ndarray] = {}

    def run(key: str, source: Path) -> None:
        results[key] = workers.decode(source, 16000)

    with AudioWorkers(workers=1, max_pending=1) as workers:
        busy = threading.Thread(target=run, args=("fifo", fifo))
        busy.start()
        writer = open_fifo_writer(fifo)
        queued = threading.Thread(target=run, args=("queued", audio))
        queued.start()
        wait_for(lambda: workers.waiting == 1, "the second call to wait")
        with pytest.raises(WorkersBusy, match="1 audio workers are busy") as caught:
            workers.decode(audio, 16000)
        assert 1 <= caught.value.retry_after <= 60
        with open(writer, "wb") as stream:
            stream.write(audio.read_bytes())
        busy.join(60)
        queued.join(60)
    np.testing.assert_array_equal(results["fifo"], decode(audio, 16000))
    np.testing.assert_array_equal(results["queued"], decode(audio, 16000))


def test_a_task_that_never_answers_times_out_as_a_crash(tmp_path: Path) -> None:
    fifo = tmp_path / "stuck.wav"  # nobody ever writes: the decoder blocks for good
    os.mkfifo(fifo)
    with AudioWorkers(workers=1, task_timeout=1.0) as workers:
        started = time.monotonic()
        with pytest.raises(WorkerCrashed, match=r"stuck\.wav: cannot decode audio \(decoder "
                                                r"timed out: no answer after 1 s\)"):
            workers.decode(fifo, 16000)
        assert time.monotonic() - started < 30
        assert workers.decode(make_audio(tmp_path / "a.wav"), 16000).size == 32000


def test_many_threads_share_the_workers(tmp_path: Path) -> None:
    files = [make_audio(tmp_path / f"{i}.wav", seconds=1.0, freq=200.0 + 50 * i) for i in range(8)]
    with AudioWorkers(workers=2) as workers:
        results: dict[int, np.ndarray] = {}
        threads = [threading.Thread(target=lambda i=i: results.__setitem__(
            i, workers.decode(files[i], 16000))) for i in range(len(files))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(workers.pids()) == 2
    for i, path in enumerate(files):
        np.testing.assert_array_equal(results[i], decode(path, 16000))


def test_closing_stops_the_workers(tmp_path: Path) -> None:
    audio = make_audio(tmp_path / "a.wav")
    workers = AudioWorkers(workers=1)
    assert workers.pids() == []  # started on first use
    workers.decode(audio, 16000)
    (pid,) = workers.pids()
    workers.close()
    assert workers.pids() == []
    wait_for(lambda: not _alive(pid), "the worker to exit", timeout=10)
    with pytest.raises(RuntimeError, match="closed"):
        workers.decode(audio, 16000)


def test_workers_end_with_the_interpreter(tmp_path: Path) -> None:
    audio = make_audio(tmp_path / "a.wav")
    script = ("import sys; from pathlib import Path\n"
              "from newwave.audio.workers import AudioWorkers\n"
              "workers = AudioWorkers(workers=2)\n"
              f"workers.decode(Path({str(audio)!r}), 16000)\n"
              "print(*workers.pids())\n")  # exits without close()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    pids = [int(p) for p in done.stdout.split()]
    assert len(pids) == 1
    wait_for(lambda: not any(_alive(p) for p in pids), "the workers to exit", timeout=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours is not running; spawn children are reaped by their parent only.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"
    except OSError:
        return False
