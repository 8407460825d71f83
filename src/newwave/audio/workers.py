"""A supervised pool of processes that decode (and embed) untrusted audio.

FFmpeg and the models are native code: a malformed or merely unusual file can crash
the process that reads it (signal 11), or exhaust its memory (SIGKILL from the OOM
killer). Library scans and uploads therefore decode in worker processes, so a crash
costs one worker, never the server or an index run. A worker that dies while holding
a task is replaced and the task retried once in a fresh worker (so an external kill
loses nothing); a file that crashes its worker twice raises :class:`WorkerCrashed`,
an :class:`AudioDecodeError` whose reason reads "decoder crashed: signal 11 (SIGSEGV)".

Each call takes an idle worker for its whole run (waiting for one), so decoding, embedding
and measuring descriptors (tempo, key, loudness) happen in the same process, on one decode,
and the waveform never crosses the pipe. Workers start on first use (``spawn``: no fork of
a threaded server), load the audio model on their first embed and the descriptor analyser
on their first analysis, ignore Ctrl+C (the caller decides), and end with the pool or at
interpreter exit.

Test hook: when the environment variable ``NEWWAVE_TEST_CRASH_MARKER`` is set (it is
read in the worker, so set it before the pool starts), a source whose first 64 KiB
contain that value's UTF-8 bytes makes the worker kill itself with SIGSEGV before
decoding, a deterministic stand-in for a decoder crash. Never set it in production.
"""

from __future__ import annotations

import io
import logging
import math
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
import weakref
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from newwave.audio.decode import AudioDecodeError, decode
from newwave.audio.descriptors import Analyser, AnalyserName, Analysis, load_analyser, measure
from newwave.errors import Unavailable

if TYPE_CHECKING:
    from newwave.models.base import ModelInfo, VectorKind

log = logging.getLogger("newwave.audio")

CRASH_MARKER_ENV = "NEWWAVE_TEST_CRASH_MARKER"
_MARKER_SPAN = 64 * 1024
_DEFAULT_START_TIMEOUT = 120.0  # importing av/numpy in a fresh process, on a busy machine

AudioInput = Path | str | bytes | bytearray | memoryview


class WorkerCrashed(AudioDecodeError):
    """The file crashed the worker that decoded it, twice (or timed out twice).

    ``signal`` is the signal number that ended the worker (None for an exit code or a
    timeout). Being an :class:`AudioDecodeError`, it is handled as undecodable audio.
    """

    def __init__(self, source: Any, reason: str, *, signal: int | None = None) -> None:
        super().__init__(source, reason)
        self.signal = signal


class WorkersBusy(Unavailable):
    """Every worker is busy and ``max_pending`` calls already wait; retry after
    ``retry_after`` seconds (HTTP 503 with Retry-After)."""

    def __init__(self, workers: int, pending: int, retry_after: int) -> None:
        super().__init__(f"all {workers} audio workers are busy and {pending} requests are "
                         f"waiting; retry in {retry_after} s")
        self.retry_after = retry_after


class WorkersUnavailable(Unavailable):
    """A worker could not start or load the audio model: the pool's fault, not a file's."""


@dataclass(frozen=True)
class EmbeddedAudio:
    """What the audio model made of one file: its vectors per kind, the seconds of audio
    that were decoded (``max_seconds`` caps them), and its descriptors when asked for."""

    vectors: dict[VectorKind, np.ndarray]
    seconds: float
    analysis: Analysis | None = None


@dataclass(frozen=True)
class ModelDescription:
    """The audio model as loaded in the workers: its sample rate and vector spaces."""

    spec: str
    sample_rate: int
    spaces: dict[VectorKind, ModelInfo]


class _Crash(Exception):
    """Internal: the worker holding a task died or stopped answering."""

    def __init__(self, reason: str, signal_number: int | None) -> None:
        super().__init__(reason)
        self.reason, self.signal_number = reason, signal_number


class AudioWorkers:
    """``workers`` processes that decode untrusted audio and embed it with ``audio_model``
    (a :func:`newwave.models.registry.load_audio_model` spec such as ``"musicnn"``).

    Thread-safe. ``max_pending``: raise :class:`WorkersBusy` at once instead of waiting
    when that many calls already wait for a worker (None: wait without limit).
    ``task_timeout``: seconds a task may take before its worker is killed and the task
    treated as a crash (None: no limit).
    """

    def __init__(self, audio_model: str | None = None, *, workers: int = 1,
                 max_pending: int | None = None, task_timeout: float | None = None,
                 start_timeout: float = _DEFAULT_START_TIMEOUT) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if max_pending is not None and max_pending < 0:
            raise ValueError(f"max_pending must be 0 or more, got {max_pending}")
        self.audio_model = audio_model
        self.workers = workers
        self.max_pending = max_pending
        self.task_timeout = task_timeout
        self.start_timeout = start_timeout
        self._context = multiprocessing.get_context("spawn")
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()  # started and not yet discarded (idle or busy)
        self._slots = 0  # workers started or starting
        self._waiting = 0
        self._closed = False
        self._seconds_per_task = 1.0  # moving average, for WorkersBusy.retry_after
        self._description: ModelDescription | None = None
        # Workers end with the pool, or at interpreter exit if it is never closed.
        self._finalizer = weakref.finalize(self, _stop_all, self._all)

    # -- the public calls -----------------------------------------------------------

    def decode(self, source: AudioInput, sample_rate: int, *, max_seconds: float | None = None,
               name: str | None = None) -> np.ndarray:
        """Like :func:`newwave.audio.decode`, in a worker. ``name`` labels a bytes source
        (an upload) in errors."""
        return self._run(("decode", _portable_source(source), sample_rate, max_seconds),
                         _label(source, name), needs_model=False)

    def embed(self, source: AudioInput, *, max_seconds: float | None = None,
              name: str | None = None, analyser: AnalyserName | None = None) -> EmbeddedAudio:
        """Decode at the model's rate and embed, in one worker: the model's
        ``embed_audio`` output per vector kind, and the decoded seconds. With ``analyser``,
        the same waveform's descriptors too (a failed analysis is returned, not raised)."""
        if self.audio_model is None:
            raise ValueError("AudioWorkers was created without an audio model; pass "
                             "audio_model='musicnn' (or a clap spec) to embed")
        vectors, seconds, analysis = self._run(
            ("embed", _portable_source(source), max_seconds, analyser),
            _label(source, name), needs_model=True)
        return EmbeddedAudio(vectors=vectors, seconds=seconds, analysis=analysis)

    def analyse(self, source: AudioInput, sample_rate: int, analyser: AnalyserName, *,
                name: str | None = None) -> Analysis:
        """Decode at ``sample_rate`` and measure descriptors with ``analyser``, in a worker
        (for tracks embedded before descriptors existed). Decoding errors raise; a failed
        analysis is returned."""
        return self._run(("analyse", _portable_source(source), sample_rate, analyser),
                         _label(source, name), needs_model=False)

    def model_description(self) -> ModelDescription:
        """The audio model's sample rate and spaces, read from a worker (the caller need
        not load the model itself)."""
        if self.audio_model is None:
            raise ValueError("AudioWorkers was created without an audio model")
        if self._description is None:
            sample_rate, spaces = self._run(("describe",), f"audio model {self.audio_model}",
                                            needs_model=True)
            self._description = ModelDescription(self.audio_model, sample_rate, spaces)
        return self._description

    def pids(self) -> list[int]:
        """Process ids of the live workers (idle or busy)."""
        with self._cond:
            return sorted(w.pid for w in self._all if w.process.is_alive())

    @property
    def waiting(self) -> int:
        """Calls waiting for an idle worker right now."""
        with self._cond:
            return self._waiting

    def close(self) -> None:
        """Stop idle workers now, busy ones when their task ends; later calls fail."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            for worker in idle:
                self._all.discard(worker)
            self._cond.notify_all()
        for worker in idle:
            worker.stop()

    def __enter__(self) -> AudioWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running one task -------------------------------------------------------------

    def _run(self, task: tuple[Any, ...], label: str, *, needs_model: bool) -> Any:
        worker: _Worker | None = self._acquire()
        started = time.monotonic()
        crashes = {"load": 0, "task": 0}
        try:
            while True:
                assert worker is not None
                # The model loads as its own step, so a crash while loading (a broken
                # model, too little memory) is blamed on the model, not on a file.
                stage = "load" if needs_model and not worker.model_loaded else "task"
                try:
                    if stage == "load":
                        status, value = worker.call(("load", self.audio_model), None)
                        if status == "ok":
                            worker.model_loaded = True
                            continue
                    else:
                        status, value = worker.call(task, self.task_timeout)
                    break
                except _Crash as crash:
                    crashes[stage] += 1
                    pid = worker.pid
                    self._discard(worker)
                    worker = None  # the slot stays this call's: the retry does not queue
                    if crashes[stage] == 2 and stage == "task":
                        raise WorkerCrashed(label, crash.reason,
                                            signal=crash.signal_number) from None
                    if crashes[stage] == 2:
                        raise WorkersUnavailable(
                            f"the audio model {self.audio_model!r} crashed its worker while "
                            f"loading, twice ({crash.reason}); check that the machine has "
                            "enough memory and that the model files are intact") from None
                    log.warning("%s: audio worker %d ended (%s) during %s; retrying in a "
                                "fresh worker", label, pid, crash.reason,
                                "model loading" if stage == "load" else "its task")
                    worker = self._start_worker()
        except BaseException:
            if worker is not None and worker.busy:  # interrupted mid-task: state unknown
                self._discard(worker)
                worker = None
            raise
        finally:
            self._release(worker)
        elapsed = time.monotonic() - started
        self._seconds_per_task = 0.8 * self._seconds_per_task + 0.2 * elapsed
        if status == "error":
            raise value
        return value

    # -- the pool -----------------------------------------------------------------------

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the audio workers are closed")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.process.is_alive():
                        return worker
                    # Died while idle (killed from outside): no task to blame.
                    log.warning("audio worker %d ended while idle (%s); starting another",
                                worker.pid, _exit_reason(worker.process.exitcode))
                    worker.kill()
                    self._all.discard(worker)
                    self._slots -= 1
                if self._slots < self.workers:
                    self._slots += 1
                    break
                if self.max_pending is not None and self._waiting >= self.max_pending:
                    pending = self._waiting
                    retry = self._seconds_per_task * (pending / self.workers + 1)
                    raise WorkersBusy(self.workers, pending, min(60, max(1, math.ceil(retry))))
                self._waiting += 1
                try:
                    self._cond.wait()
                finally:
                    self._waiting -= 1
        try:
            return self._start_worker()
        except BaseException:
            with self._cond:
                self._slots -= 1
                self._cond.notify()
            raise

    def _release(self, worker: _Worker | None) -> None:
        with self._cond:
            if worker is not None and not self._closed:
                self._idle.append(worker)
                self._cond.notify()
                return
            if worker is not None:
                self._all.discard(worker)
            self._slots -= 1
            self._cond.notify()
        if worker is not None:
            worker.stop()

    def _start_worker(self) -> _Worker:
        # Each of several workers gets its share of the cores for the model's threads.
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        worker = _Worker(self._context, threads, self.start_timeout)
        with self._cond:
            self._all.add(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._cond:
            self._all.discard(worker)


class _Worker:
    """One worker process and the parent's end of its pipe. Used by one thread at a time."""

    def __init__(self, context: Any, threads: int, start_timeout: float) -> None:
        ours, theirs = context.Pipe(duplex=True)
        self.process = context.Process(target=_serve, args=(theirs, threads), daemon=True,
                                       name="newwave-audio-worker")
        self.process.start()
        theirs.close()  # so the worker's death reads as EOF here
        self.conn: Connection = ours
        self.model_loaded = False
        self.busy = False
        # Wait for the worker's imports: a worker that cannot start is the pool's fault.
        try:
            self._answer(start_timeout)
        except _Crash as crash:
            self.kill()
            raise WorkersUnavailable(
                f"an audio worker process could not start ({crash.reason}); check that "
                "NewWave's environment imports cleanly (python -c 'import newwave.audio')"
            ) from None

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def call(self, task: tuple[Any, ...], timeout: float | None) -> tuple[str, Any]:
        self.busy = True
        try:
            self.conn.send(task)
        except (OSError, EOFError):
            pass  # the worker is gone; _answer reads its exit status
        answer = self._answer(timeout)
        self.busy = False
        return answer

    def _answer(self, timeout: float | None) -> tuple[str, Any]:
        ready = wait([self.conn, self.process.sentinel], timeout)
        if self.conn in ready:
            try:
                return self.conn.recv()
            except (OSError, EOFError):
                pass  # died before a complete answer
        if not ready:
            self.kill()
            raise _Crash(f"decoder timed out: no answer after {timeout:g} s", None)
        self.process.join(5)
        code = self.process.exitcode
        raise _Crash(_exit_reason(code), -code if code is not None and code < 0 else None)

    def stop(self) -> None:
        """Ask the worker to exit; kill it if it does not."""
        try:
            self.conn.send(None)
        except (OSError, EOFError):
            pass
        self.process.join(2)
        self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


def _stop_all(workers: set[_Worker]) -> None:
    for worker in list(workers):
        worker.stop()
    workers.clear()


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "decoder crashed: the worker did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"decoder crashed: signal {-code} ({name})"
    return f"decoder crashed: exit code {code}"


def _portable_source(source: AudioInput) -> str | bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    return str(source)


def _label(source: AudioInput, name: str | None) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return name or f"<upload of {len(source)} bytes>"
    return str(source)


# -- inside the worker process -------------------------------------------------------------


def _serve(conn: Connection, threads: int) -> None:
    """The worker's loop: one task in, one answer out, until told to stop or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole process group
    model: Any = None
    analysers: dict[AnalyserName, Analyser] = {}  # loaded on first use, kept for the next file
    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if task is None:
            return
        try:
            if task[0] == "load":
                model = _load_model(task[1], threads)
                answer: tuple[str, Any] = ("ok", None)
            else:
                answer = ("ok", _perform(task, model, analysers))
        except Exception as exc:  # sent back and re-raised in the caller
            answer = ("error", exc)
        try:
            conn.send(answer)
        except (pickle.PicklingError, TypeError, AttributeError):
            conn.send(("error", RuntimeError(
                f"audio worker error that cannot be sent back: {answer[1]!r}\n"
                + "".join(traceback.format_exception(answer[1])))))


def _load_model(spec: str, threads: int) -> Any:
    from newwave.models.registry import load_audio_model

    model = load_audio_model(spec)
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.set_num_threads(threads)
    return model


def _perform(task: tuple[Any, ...], model: Any,
             analysers: dict[AnalyserName, Analyser]) -> Any:
    kind = task[0]
    if kind == "describe":
        return model.sample_rate, dict(model.spaces)
    source = task[1]
    _crash_if_marked(source)
    opened: Any = io.BytesIO(source) if isinstance(source, bytes) else Path(source)
    if kind == "decode":
        return decode(opened, task[2], max_seconds=task[3])
    if kind == "embed":
        rate, analyser = model.sample_rate, task[3]
        waveform = decode(opened, rate, max_seconds=task[2])
        analysis = None if analyser is None else _analyse(analysers, analyser, waveform, rate)
        return model.embed_audio(waveform, rate), waveform.size / rate, analysis
    if kind == "analyse":
        rate, analyser = task[2], task[3]
        return _analyse(analysers, analyser, decode(opened, rate), rate)
    raise ValueError(f"unknown audio worker task {kind!r}")


def _analyse(analysers: dict[AnalyserName, Analyser], name: AnalyserName,
             waveform: np.ndarray, sample_rate: int) -> Analysis:
    if name not in analysers:
        analysers[name] = load_analyser(name)  # an import failure is the pool's: it raises
    return measure(analysers[name], waveform, sample_rate)


def _crash_if_marked(source: str | bytes) -> None:
    marker = os.environ.get(CRASH_MARKER_ENV)
    if not marker:
        return
    if isinstance(source, bytes):
        head = source[:_MARKER_SPAN]
    else:
        try:
            with open(source, "rb") as handle:
                head = handle.read(_MARKER_SPAN)
        except OSError:
            return
    if marker.encode("utf-8") in head:
        os.kill(os.getpid(), signal.SIGSEGV)
