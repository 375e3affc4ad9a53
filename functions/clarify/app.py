"""ClarifyFunction: the workflow's side of the questions to the user. ``wait`` keeps the task token the
execution waits on (invoked with ``.waitForTaskToken``) on every open question; ``timed_out`` applies the
configured action to the questions no answer came for in time."""

import asyncagents.coldstart  # first: the GC waits while the modules below load

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from asyncagents import runtime
from asyncagents.logs import correlate
from asyncagents.tasks import QuestionTask

logger = Logger(service="asyncagents-clarify")


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    task = QuestionTask.model_validate(event)
    correlate(logger, request_key=task.request_key, execution=task.execution_name)
    steps = runtime.current().workflow_steps
    if task.action == "wait":
        return steps.await_open(task.request_key, task.execution_name, task.task_token or "")
    whole_wait = task.ended_by == "States.Timeout"
    return steps.open_timed_out(task.request_key, task.execution_name, whole_wait=whole_wait)


asyncagents.coldstart.done()  # init is over: what it made is frozen, the GC resumes
