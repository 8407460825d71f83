"""Property-based fuzzing of the HTTP API against its own OpenAPI document.

Schemathesis reads ``/openapi.json`` from a real ``newwave serve`` process (the
``live_server`` fixture: loopback, an indexed generated library) and, for every operation,
sends schema-derived requests, valid (positive) and invalid (negative), then checks each
answer:

- ``not_a_server_error``: never a 5xx (every NewWave error is a 4xx ``{"error": ...}``);
- ``status_code_conformance``: the status is one the operation documents;
- ``content_type_conformance``: the Content-Type is one the operation documents;
- ``response_schema_conformance``: a JSON body matches the documented schema;
- ``negative_data_rejection`` / ``positive_data_acceptance``: schema-invalid requests get
  a 4xx, schema-valid ones are not refused with a 400/422;
- ``search_bodies_conform`` (ours): the bodies the OpenAPI document cannot describe, the
  NDJSON stream (a query line, hit lines, a summary line) and the JSON of
  ``/search/combined``, validate against the API's own response models.

Half the valid cases are aimed at the library's real tracks (ids, a real recording for
``/search/by-audio``) with the headers clients send (``Accept``, ``Range``), so the fuzz
reaches the 200/206 paths and not only 404s. Bounded: ``NEWWAVE_FUZZ_EXAMPLES`` examples
per operation and mode (default 20), no Hypothesis deadline, no example database,
derandomized Hypothesis (the server's state still varies between runs): the file takes
about a minute on 2 cores, half of it the ``live_server`` set-up (index + start).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from newwave.api.schemas import HitOut, QueryLine, SearchOut, SummaryLine  # noqa: E402

MAX_EXAMPLES = int(os.environ.get("NEWWAVE_FUZZ_EXAMPLES", "20"))
NDJSON = "application/x-ndjson"

# Every operation of the API except POST /library/scan, which starts a background rescan
# of the whole library per call: it is called once, below, not fuzzed.
# test_every_operation_is_fuzzed keeps this list in step with the live /openapi.json.
FUZZED = [
    ("GET", "/search/audio"), ("GET", "/search/lyrics"), ("GET", "/search/combined"),
    ("POST", "/search/by-audio"), ("GET", "/tracks/{track_id}"),
    ("GET", "/tracks/{track_id}/similar"), ("GET", "/tracks/{track_id}/audio"),
    ("GET", "/tracks/{track_id}/cover"), ("POST", "/feedback"), ("GET", "/jobs/{job_id}"),
    ("GET", "/health"), ("GET", "/stats"),
]
NOT_FUZZED = {("POST", "/library/scan")}
# Routes that answer JSON or NDJSON by the Accept header.
NEGOTIATED = {"/search/audio", "/search/lyrics", "/search/combined", "/search/by-audio",
              "/tracks/{track_id}/similar"}
RANGES = ["bytes=0-1023", "bytes=100-", "bytes=-500", "bytes=0-0"]


def search_bodies_conform(ctx, response, case) -> bool | None:
    """What the OpenAPI document leaves undescribed: NDJSON search streams (any route),
    and the JSON of /search/combined (documented as "any JSON": it has no response_model
    because it streams by default). A 2xx only; errors are ErrorOut, checked by schema."""
    if case.path not in NEGOTIATED or response.status_code != 200:
        return None
    media = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    if media == NDJSON:
        # NDJSON lines end at "\n" only: JSON strings may hold U+2028, U+0085, ... raw.
        lines = [json.loads(line) for line in response.text.split("\n") if line.strip()]
        assert len(lines) >= 2, f"an NDJSON search answer has {len(lines)} lines"
        QueryLine.model_validate(lines[0])
        SummaryLine.model_validate(lines[-1])
        for line in lines[1:-1]:
            HitOut.model_validate(line)
        assert lines[-1]["returned"] == len(lines) - 2, "summary count != hit lines"
    elif media == "application/json":
        SearchOut.model_validate(response.json())
    return True


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection, positive_data_acceptance,
          search_bodies_conform]

# Narrow exclusions, each for a reason the documented schema cannot express:
# (method, path template) -> checks skipped for that operation only.
UNSOUND = {
    # The audio file and the cover image are binary bodies (audio/mpeg, image/jpeg, ...).
    # FastAPI documents a route without a response_model as `application/json` with an
    # empty schema, and a FileResponse/Response cannot declare a per-file media type, so
    # the Content-Type and "the body is that JSON" checks do not apply. Their status codes
    # are still checked (200/206/416/404/422), and no 5xx is allowed.
    ("GET", "/tracks/{track_id}/audio"): {content_type_conformance, response_schema_conformance},
    ("GET", "/tracks/{track_id}/cover"): {content_type_conformance, response_schema_conformance},
    # The upload is documented as any binary (`format: binary`); only decodable audio of
    # 3 s to 2 min is accepted, so schema-valid random bytes get a (correct) 422. The real
    # recordings the aimed cases upload do get 200.
    ("POST", "/search/by-audio"): {positive_data_acceptance},
}


@pytest.fixture(scope="session")
def api_schema(live_server):
    """The live server's own /openapi.json, loaded by schemathesis (no config file read)."""
    url, _data, _library = live_server
    loaded = schemathesis.openapi.from_url(f"{url}/openapi.json", config=schemathesis.Config(),
                                           timeout=30)
    loaded.config.update(base_url=url, request_timeout=60)
    return loaded


@pytest.fixture(scope="session")
def track_ids(live_server) -> list[int]:
    """Ids of tracks in the live library, so the fuzz reaches real tracks, not only 404s."""
    import httpx

    url, _data, _library = live_server
    answer = httpx.get(f"{url}/search/combined", params={"q": "music", "limit": 100},
                       headers={"Accept": "application/json"}, timeout=60)
    answer.raise_for_status()
    ids = sorted({hit["track"]["id"] for hit in answer.json()["hits"]})
    assert ids, "the live library has no searchable tracks"
    return ids


@pytest.fixture(scope="session")
def recording(live_server) -> bytes:
    """A real audio file of the library (the smallest), as a /search/by-audio upload."""
    _url, _data, library = live_server
    files = [p for p in library.rglob("*")
             if p.suffix.lower() in {".mp3", ".ogg", ".flac", ".m4a", ".opus", ".wav"}]
    return min(files, key=lambda p: p.stat().st_size).read_bytes()


def _server_log(data_dir: Path) -> str:
    log = data_dir.parent / "server.log"
    try:
        return log.read_text(errors="replace")[-6000:]
    except OSError:
        return "(no server log)"


def _documented_200_types(operation) -> list[str]:
    ok = operation.definition.raw.get("responses", {}).get("200", {})
    return sorted(ok.get("content", {}))


def _has_inputs(operation) -> bool:
    return bool(operation.path_parameters or operation.query or operation.headers
                or operation.body)


def test_every_operation_is_fuzzed(api_schema):
    live = {(op.method.upper(), op.path) for op in
            (result.ok() for result in api_schema.get_all_operations())}
    assert live == set(FUZZED) | NOT_FUZZED, (
        "the API's operations changed: add new ones to FUZZED (or, with a reason, NOT_FUZZED)")


# schemathesis' pytest integration over a fixture-provided schema
# (`schemathesis.pytest.from_fixture` + `@schema.parametrize()`) fails under pytest 9
# (schemathesis 4.32 writes `request.node._nodeid`, which pytest 9 nodes no longer have),
# and the schema exists only once the live server runs, so each operation is driven
# through its schemathesis Hypothesis strategy instead: the same generators and checks.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=lambda mode: mode.value)
@pytest.mark.parametrize("method,path", FUZZED, ids=[f"{m} {p}" for m, p in FUZZED])
def test_operation_conforms_to_its_schema(api_schema, live_server, track_ids, recording,
                                          method, path, mode):
    url, data_dir, _library = live_server
    operation = api_schema[path][method]
    excluded = list(UNSOUND.get((method, path), ()))
    if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
        pytest.skip(f"{method} {path} takes no input: there is no invalid request to make")
    # Accept values a client may send: what the operation documents for its 200, or anything.
    accepts = [*_documented_200_types(operation), "*/*"] if path in NEGOTIATED else []

    def aimed(case, track_id: int, accept: str | None, range_: str | None, upload: bool):
        """The generated case, aimed at a real track (path id or feedback body), with a
        real recording for /search/by-audio and the Accept/Range headers clients send."""
        if "track_id" in (case.path_parameters or {}):
            case.path_parameters = {**case.path_parameters, "track_id": track_id}
        if path == "/feedback" and isinstance(case.body, dict):
            case.body = {**case.body, "track_id": track_id}
        if path == "/search/by-audio" and upload:
            case.body = {"file": recording}
            uploads.append(case)
        headers = dict(case.headers or {})
        if accept is not None and accepts:
            headers["Accept"] = accept
        if range_ is not None and path == "/tracks/{track_id}/audio":
            headers["Range"] = range_
        case.headers = headers
        return case

    uploads: list = []  # the cases that carry a real recording
    generated = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE:
        # Half the valid cases as generated (mostly unknown ids: 404s), half aimed at the
        # library. A real upload costs a decode + embed, so only a few of those.
        generated = st.one_of(generated, st.builds(
            aimed, generated, st.sampled_from(track_ids),
            st.none() | st.sampled_from(accepts or [None]), st.none() | st.sampled_from(RANGES),
            st.sampled_from([True, False, False, False])))
    statuses: dict[int, int] = {}

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
    @given(case=generated)
    def check(case):
        try:
            # A body replaced after generation is re-judged by schemathesis, which reads
            # the raw bytes of a `format: binary` field as schema-violating data; the real
            # recording is valid, so negative_data_rejection does not apply to it.
            skip = [negative_data_rejection] if any(case is c for c in uploads) else []
            response = case.call_and_validate(base_url=url, checks=CHECKS,
                                              excluded_checks=excluded + skip, timeout=60)
        except BaseException as exc:
            # The failure report names the request (a curl line); a 5xx also needs the
            # server's traceback, which is in the live server's log.
            if "Server error" in str(exc):
                exc.add_note(f"server log tail:\n{_server_log(data_dir)}")
            raise
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    check()
    print(f"{method} {path} [{mode.value}]: statuses {dict(sorted(statuses.items()))}")


@pytest.mark.parametrize("path", sorted(NEGOTIATED - {"/search/combined"}))
def test_ndjson_answers_are_documented(api_schema, path):
    """Every route that can answer NDJSON says so in its OpenAPI 200 response."""
    method = "POST" if path == "/search/by-audio" else "GET"
    assert NDJSON in _documented_200_types(api_schema[path][method])


def test_library_scan_once_conforms(api_schema, live_server):
    """POST /library/scan, once (not fuzzed): 202 with a job, or 409 while one runs; then
    its job, polled until it ends, conforms too."""
    import time

    url, _data, _library = live_server
    case = api_schema["/library/scan"]["POST"].Case()
    response = case.call_and_validate(base_url=url, checks=CHECKS, timeout=60)
    assert response.status_code in (202, 409)
    if response.status_code == 202:
        job = api_schema["/jobs/{job_id}"]["GET"].Case(
            path_parameters={"job_id": response.json()["id"]})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            answer = job.call_and_validate(base_url=url, checks=CHECKS, timeout=60)
            if answer.json()["status"] != "running":
                break
            time.sleep(0.5)
        assert answer.json()["status"] == "done", answer.json()
