"""MarkFailedFunction: records a failure caught by the state machine, unless the request already ended."""

import asyncagents.coldstart  # first: the GC waits while the modules below load

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from asyncagents import runtime
from asyncagents.logs import correlate
from asyncagents.tasks import FailureTask

logger = Logger(service="asyncagents-mark-failed")


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    task = FailureTask.model_validate(event)
    correlate(logger, request_key=task.request_key, execution=task.execution_name)
    return runtime.current().workflow_steps.mark_failed(
        task.request_key, task.execution_name, task.error.error, task.error.cause
    )


asyncagents.coldstart.done()  # init is over: what it made is frozen, the GC resumes
