"""SweeperFunction: every few minutes (EventBridge Scheduler), ends or restarts the requests that should have
finished: the last line of defence when a status event was lost or the API died before starting a workflow."""

import asyncagents.coldstart  # first: the GC waits while the modules below load

import time

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from asyncagents import runtime
from asyncagents.domain.telemetry import sweep
from asyncagents.logs import correlate

logger = Logger(service="asyncagents-sweeper")


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    correlate(logger)
    current = runtime.current()
    # Stop with a minute to spare: what is left waits for the next sweep, never for a timed-out one.
    report = current.sweeper.sweep(deadline=time.time() + context.get_remaining_time_in_millis() / 1000 - 60)
    current.telemetry.emit(sweep(report.checked, report.repaired, current.unfinished_requests()))
    return {
        "checked": report.checked,
        "started": report.started,
        "reconciled": report.reconciled,
        "failed": report.failed,
        "running": report.running,
    }


asyncagents.coldstart.done()  # init is over: what it made is frozen, the GC resumes
