"""RunStepFunction: runs one planned step, checkpointed before and after the model call."""

import time

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from asyncagents import runtime
from asyncagents.config import TASK_FUNCTION_MARGIN_SECONDS
from asyncagents.logs import correlate
from asyncagents.tasks import StepTask

logger = Logger(service="asyncagents-run-step")


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    task = StepTask.model_validate(event)
    correlate(logger, request_key=task.request_key, execution=task.execution_name, step=task.index)
    # When the Task times out (Lambda stops the function a few seconds later): the provider never waits past it,
    # so an abandoned attempt records what it spent and ends before the retry that replaces it gets far.
    deadline = time.time() + context.get_remaining_time_in_millis() / 1000 - TASK_FUNCTION_MARGIN_SECONDS
    return runtime.current().workflow_steps.run_step(
        task.request_key, task.execution_name, task.index, task.title, deadline=deadline
    )
