"""RunScheduleFunction: EventBridge Scheduler's target. Submits the request of one job's slot; a slot delivered
again (Scheduler delivers at least once, and retries) finds its request and starts nothing."""

import asyncagents.coldstart  # first: the GC waits while the modules below load

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from asyncagents import runtime
from asyncagents.logs import correlate
from asyncagents.tasks import ScheduledSlot

logger = Logger(service="asyncagents-schedules")


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    slot = ScheduledSlot.model_validate(event)
    correlate(logger, job_id=slot.job_id, slot=slot.scheduled_time)
    fired = runtime.current().schedules.fire(slot.job_id, slot.scheduled_time)
    request_id = fired.submission.record.request_id if fired.submission else None
    logger.info("slot handled", extra={"job_id": slot.job_id, "slot": slot.scheduled_time, "request_id": request_id})
    return {"job_id": fired.job_id, "request_id": request_id, "skipped": fired.reason or None}


asyncagents.coldstart.done()  # init is over: what it made is frozen, the GC resumes
