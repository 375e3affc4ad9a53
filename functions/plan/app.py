"""PlanFunction: moves a request to processing and splits it into steps."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from asyncagents import runtime
from asyncagents.logs import correlate
from asyncagents.tasks import RequestTask

logger = Logger(service="asyncagents-plan")


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    task = RequestTask.model_validate(event)
    correlate(logger, request_key=task.request_key, execution=task.execution_name)
    return runtime.current().workflow_steps.plan(task.request_key, task.execution_name)
