"""FinishFunction: composes the answer from the stored step outputs and completes the request."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from asyncagents import runtime
from asyncagents.logs import correlate
from asyncagents.tasks import RequestTask

logger = Logger(service="asyncagents-finish")


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    task = RequestTask.model_validate(event)
    correlate(logger, request_key=task.request_key, execution=task.execution_name)
    return runtime.current().workflow_steps.finish(task.request_key, task.execution_name)
