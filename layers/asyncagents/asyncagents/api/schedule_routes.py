"""Scheduler routes, as MUXI's SDK calls them (admin key): ``/v1/scheduler`` and ``/v1/scheduler/jobs``."""

from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from asyncagents import runtime
from asyncagents.api.routing import json_response, route
from asyncagents.api.schemas import USER_ID_PATTERN, JobChanges, NewJobBody

if TYPE_CHECKING:
    from asyncagents.domain.schedules.service import JobView


def job_body(view: "JobView") -> dict[str, Any]:
    job = view.job
    return {
        **job.model_dump(exclude={"version"}),
        "run_at": job.schedule if job.type == "one_time" else None,  # MUXI's field for one-time jobs
        "next_run": view.next_run,
        "runs": [run.model_dump() for run in view.runs],
        "last_run": view.runs[0].model_dump() if view.runs else None,
    }


@route("GET", "/v1/scheduler", key="admin", summary="The scheduler: EventBridge Scheduler, and its jobs")
def scheduler_config() -> Response[Any]:
    current = runtime.current()
    return json_response(
        200,
        {
            "enabled": True,
            "backend": "eventbridge-scheduler",
            "group": current.settings.schedule_group,
            "formation_schedules": sorted(current.formation.schedules),
        },
    )


@route("GET", "/v1/scheduler/jobs", key="admin", summary="Scheduled jobs (the formation's and the API's)")
def list_jobs(
    user_id: Annotated[str | None, Query(min_length=1, max_length=256, pattern=USER_ID_PATTERN)] = None,
) -> Response[Any]:
    views = runtime.current().schedules.list(user_id)
    return json_response(200, {"jobs": [job_body(v) for v in views], "count": len(views)})


@route("POST", "/v1/scheduler/jobs", key="admin", ok=201, errors=(409, 503), summary="Create a scheduled job")
def create_job(body: NewJobBody) -> Response[Any]:
    view = runtime.current().schedules.create(body.to_domain())
    return json_response(201, job_body(view), {"Location": f"/v1/scheduler/jobs/{view.job.id}"})


@route("GET", "/v1/scheduler/jobs/<job_id>", key="admin", errors=(404,), summary="A scheduled job and its runs")
def get_job(job_id: str) -> Response[Any]:
    return json_response(200, job_body(runtime.current().schedules.get(job_id)))


@route("PUT", "/v1/scheduler/jobs/<job_id>", key="admin", errors=(404, 409, 503), summary="Change a job")
def update_job(job_id: str, body: JobChanges) -> Response[Any]:
    changes = body.model_dump(exclude_unset=True)
    return json_response(200, job_body(runtime.current().schedules.update(job_id, changes)))


@route("DELETE", "/v1/scheduler/jobs/<job_id>", key="admin", errors=(404, 409, 503), summary="Delete a job")
def delete_job(job_id: str) -> Response[Any]:
    runtime.current().schedules.delete(job_id)
    return json_response(200, {"message": f"Scheduled job '{job_id}' removed successfully", "id": job_id})


@route("POST", "/v1/scheduler/jobs/<job_id>/pause", key="admin", errors=(404, 409, 503), summary="Pause a job")
def pause_job(job_id: str) -> Response[Any]:
    return json_response(200, job_body(runtime.current().schedules.pause(job_id)))


@route("POST", "/v1/scheduler/jobs/<job_id>/resume", key="admin", errors=(404, 409, 503), summary="Resume a job")
def resume_job(job_id: str) -> Response[Any]:
    return json_response(200, job_body(runtime.current().schedules.resume(job_id)))
