"""ReconcileFunction: a workflow execution ended without recording it (timeout, stop, uncaught failure):
end its request as failed, so that no request is ever left processing."""

import asyncagents.coldstart  # first: the GC waits while the modules below load

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from asyncagents import runtime
from asyncagents.logs import correlate
from asyncagents.tasks import ExecutionEnded

logger = Logger(service="asyncagents-reconcile")


@logger.inject_lambda_context
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict:
    ended = ExecutionEnded.model_validate(event.detail)
    request_key = ended.request_key()
    correlate(logger, request_key=request_key, execution=ended.name)
    if request_key is None:
        logger.warning("execution %s has no request key in its input", ended.name)
        return {"reconciled": False}
    return runtime.current().workflow_steps.reconcile(
        request_key, ended.name, ended.status, ended.error or "", ended.cause or ""
    )


asyncagents.coldstart.done()  # init is over: what it made is frozen, the GC resumes
