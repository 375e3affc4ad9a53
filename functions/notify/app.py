"""NotifyFunction: turns request status changes on the table's stream into webhook events on the queue, frees the
slot of each request that ended, and measures each request's end (outcome, duration, steps, tokens)."""

import asyncagents.coldstart  # first: the GC waits while the modules below load

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from asyncagents import runtime, streams
from asyncagents.logs import correlate

logger = Logger(service="asyncagents-notify")
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


def record_handler(record: DynamoDBRecord) -> None:
    change = record.dynamodb
    old, new = (change.old_image, change.new_image) if change else (None, None)
    current = runtime.current()
    event = streams.webhook_event_of(old, new)
    queued = [event] if event is not None else []
    queued += streams.notices_of(old, new, current.formation.notifications)
    if queued:
        current.webhook_queue.send(queued)
    if ended := streams.ended_request(old, new):
        current.request_limits.release_active(*ended)
    # After the work above: a batch retried after a failure measures a change once more, never not at all.
    streams.measure_change(old, new, current.request_telemetry)


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    correlate(logger)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


asyncagents.coldstart.done()  # init is over: what it made is frozen, the GC resumes
