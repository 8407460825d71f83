"""Library routes: feedback, background rescans and their jobs."""

from __future__ import annotations

from fastapi import APIRouter, Request

from newwave.api.deps import JobId, Service
from newwave.api.jobs import LibraryJobs
from newwave.api.responses import ApiError
from newwave.api.routers.tracks import present_track
from newwave.api.schemas import ErrorOut, FeedbackIn, FeedbackOut, JobOut

router = APIRouter()


@router.post("/feedback", response_model=FeedbackOut, status_code=201, tags=["feedback"])
def feedback(service: Service, body: FeedbackIn) -> FeedbackOut:
    present_track(service.catalog, body.track_id)
    feedback_id = service.catalog.add_feedback(body.track_id, body.kind, body.query)
    return FeedbackOut(id=feedback_id, track_id=body.track_id, kind=body.kind)


@router.post("/library/scan", response_model=JobOut, status_code=202, tags=["library"],
             responses={409: {"model": ErrorOut}})
def scan(service: Service, request: Request) -> JobOut:
    """Rescan every library folder, embed what changed and update the indexes, in the
    background; poll ``/jobs/{id}``."""
    if not service.catalog.roots():
        raise ApiError(409, "no library folder yet; run `newwave index FOLDER` first")
    jobs: LibraryJobs = request.app.state.jobs
    return JobOut.of(service.catalog.job(jobs.start_scan()))


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["library"])
def job(service: Service, job_id: JobId) -> JobOut:
    found = service.catalog.job(job_id)
    if found is None:
        raise ApiError(404, f"no job with id {job_id}")
    return JobOut.of(found)
