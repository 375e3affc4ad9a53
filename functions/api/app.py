"""ApiFunction: the HTTP API (API Gateway HTTP API events, payload v2)."""

import asyncagents.coldstart  # first: the GC waits while the modules below load

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from asyncagents.api.app import handle
from asyncagents.logs import correlate

logger = Logger(service="asyncagents-api")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    correlate(logger)
    return handle(event, context)


asyncagents.coldstart.done()  # init is over: what it made is frozen, the GC resumes
