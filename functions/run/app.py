"""RunFunction: runs a request — its plan, its steps (checkpointed, retried, each within its timeout), its
answer — as far as this invocation goes."""

import asyncagents.coldstart  # first: the GC waits while the modules below load

import time

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from asyncagents import runtime
from asyncagents.domain.errors import ClarificationRequested, RequestFailed, RunContinues
from asyncagents.domain.telemetry import run_handover
from asyncagents.formation_workflow import TASK_FUNCTION_MARGIN_SECONDS
from asyncagents.logs import correlate
from asyncagents.tasks import RequestTask

logger = Logger(service="asyncagents-run")


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    task = RequestTask.model_validate(event)
    correlate(logger, request_key=task.request_key, execution=task.execution_name)
    # When the Task times out (Lambda stops the function a few seconds later): no attempt starts that could
    # not finish before it, and the provider never waits past it.
    deadline = time.time() + context.get_remaining_time_in_millis() / 1000 - TASK_FUNCTION_MARGIN_SECONDS
    try:
        return runtime.current().workflow_steps.run(task.request_key, task.execution_name, deadline=deadline)
    except (ClarificationRequested, RunContinues, RequestFailed):
        runtime.current().telemetry.emit(run_handover())  # an error to Lambda, a route to the workflow
        raise


asyncagents.coldstart.done()  # init is over: what it made is frozen, the GC resumes
