"""ClarifyFunction: the workflow's side of a question to the user. ``wait`` keeps the task token the
execution waits on (invoked with ``.waitForTaskToken``); ``timed_out`` applies the configured action when
no answer came in time."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from asyncagents import runtime
from asyncagents.logs import correlate
from asyncagents.tasks import QuestionTask

logger = Logger(service="asyncagents-clarify")


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    task = QuestionTask.model_validate(event)
    correlate(logger, request_key=task.request_key, execution=task.execution_name, step=task.index)
    steps = runtime.current().workflow_steps
    if task.action == "wait":
        return steps.await_answer(task.request_key, task.execution_name, task.index, task.task_token or "")
    return steps.answer_timed_out(task.request_key, task.execution_name, task.index)
