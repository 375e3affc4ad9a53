"""WebhookSenderFunction: delivers a batch of webhook events concurrently; failed ones stay on the queue."""

import asyncagents.coldstart  # first: the GC waits while the modules below load

import asyncio
import functools

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from asyncagents import runtime
from asyncagents.logs import correlate

logger = Logger(service="asyncagents-webhooks")
# A batch whose every message is retried is still a partial-failure answer, not a function error.
processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


async def record_handler(record: SQSRecord) -> None:
    deliver = functools.partial(
        runtime.current().webhook_sender.handle,
        record.body,
        attempt=int(record.attributes.approximate_receive_count),
        receipt_handle=record.receipt_handle,
        first_received_at=int(record.attributes.approximate_first_receive_timestamp) / 1000,
    )
    await asyncio.get_running_loop().run_in_executor(runtime.current().delivery_pool, deliver)


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    correlate(logger)
    return async_process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


asyncagents.coldstart.done()  # init is over: what it made is frozen, the GC resumes
