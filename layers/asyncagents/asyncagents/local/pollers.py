"""What invokes functions on AWS, emulated: Lambda's event source mappings (a DynamoDB stream poller, SQS
pollers), EventBridge's execution status events, EventBridge Scheduler, Lambda's asynchronous invocation
(retries, then the on-failure destination), and DynamoDB's TTL sweep.

They call the in-process handlers with events shaped like AWS's, honour partial batch failures
(``batchItemFailures``) and, for SQS, leave failed messages on the queue so that their visibility
timeout (set by the sender for backoff) and the queue's redrive policy apply, as in AWS.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from asyncagents.local.lambdas import LocalContext

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]


class _Poller(threading.Thread):
    def __init__(self, name: str, handler: Handler, function_arn: str, interval: float) -> None:
        super().__init__(name=name, daemon=True)
        self._handler = handler
        self._arn = function_arn
        self._interval = interval
        self._stopping = threading.Event()
        self.batches = 0

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)

    def _invoke(self, event: dict[str, Any]) -> Any:
        self.batches += 1
        name = self._arn.rsplit(":", 1)[-1]
        return self._handler(event, LocalContext(function_name=name, invoked_function_arn=self._arn))

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.poll_once()
            except Exception:
                logger.exception("%s: polling failed", self.name)
                busy = False
            if not busy:
                self._stopping.wait(self._interval)

    def poll_once(self) -> bool:
        raise NotImplementedError


class StreamPoller(_Poller):
    """Reads the table's stream from the start and feeds the records to a handler, in order; a failed
    batch (or the part of it from the first reported failure) is retried before anything newer."""

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        handler: Handler,
        function_arn: str,
        *,
        batch_size: int = 100,
        interval: float = 0.05,
        max_retries: int | None = None,
        on_failure: Callable[[list[dict[str, Any]]], None] | None = None,
        filters: tuple[str, ...] = (),
    ) -> None:
        super().__init__("asyncagents-stream-poller", handler, function_arn, interval)
        from moto.events.models import EventPattern

        # The mapping's FilterCriteria, as Lambda applies them: a record that matches no pattern never reaches
        # the function (and is not retried); moto's EventBridge pattern matcher speaks the same pattern language.
        self._filters = [EventPattern.load(pattern) for pattern in filters]
        self._streams = streams
        self._stream_arn = stream_arn
        self._batch_size = batch_size
        self._iterators: dict[str, str] = {}
        # The mapping's MaximumRetryAttempts and on-failure destination: a record the handler keeps failing on
        # is retried this often (in ever smaller batches, as BisectBatchOnFunctionError does), then handed
        # over and skipped, so that it never blocks its shard.
        self._max_retries = max_retries
        self._on_failure = on_failure
        self._failures: dict[str, int] = {}

    def poll_once(self) -> bool:
        if not self._iterators:
            shards = self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"]
            for shard in shards:
                self._iterators[shard["ShardId"]] = self._streams.get_shard_iterator(
                    StreamArn=self._stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
        busy = False
        for shard_id, iterator in list(self._iterators.items()):
            response = self._streams.get_records(ShardIterator=iterator, Limit=self._batch_size)
            records = [record for record in response.get("Records", []) if self._wanted(record)]
            if not records:
                self._iterators[shard_id] = response.get("NextShardIterator") or iterator
                continue
            busy = True
            failed_sequence = self._deliver(records)
            if failed_sequence is not None and self._exhausted(failed_sequence, records):
                failed_sequence = self._skip_past(failed_sequence, records)
            if failed_sequence is None:
                self._iterators[shard_id] = response.get("NextShardIterator") or iterator
            else:
                self._iterators[shard_id] = self._streams.get_shard_iterator(
                    StreamArn=self._stream_arn,
                    ShardId=shard_id,
                    ShardIteratorType="AT_SEQUENCE_NUMBER",
                    SequenceNumber=failed_sequence,
                )["ShardIterator"]
                self._stopping.wait(0.2)
        return busy

    def _wanted(self, record: dict[str, Any]) -> bool:
        return not self._filters or any(f.matches_event(self._lambda_record(record)) for f in self._filters)  # type: ignore[arg-type]

    def _exhausted(self, sequence: str, records: list[dict[str, Any]]) -> bool:
        if self._max_retries is None:
            return False
        self._failures[sequence] = self._failures.get(sequence, 0) + 1
        return self._failures[sequence] > self._max_retries

    def _skip_past(self, sequence: str, records: list[dict[str, Any]]) -> str | None:
        """Hand the failing record to the on-failure destination; go on from the record after it."""
        position = next(i for i, r in enumerate(records) if str(r["dynamodb"]["SequenceNumber"]) == sequence)
        self._failures.pop(sequence, None)
        if self._on_failure is not None:
            self._on_failure([records[position]])
        rest = records[position + 1 :]
        if not rest:
            return None
        return self._deliver(rest)

    def _deliver(self, records: list[dict[str, Any]]) -> str | None:
        """Returns the sequence number to retry from, or ``None`` when the whole batch succeeded."""
        event = {"Records": [self._lambda_record(record) for record in records]}
        try:
            result = self._invoke(event) or {}
        except Exception:
            logger.exception("stream handler failed; retrying the batch")
            return str(records[0]["dynamodb"]["SequenceNumber"])
        failures = result.get("batchItemFailures") or []
        return str(failures[0]["itemIdentifier"]) if failures else None

    def _lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        change = dict(record["dynamodb"])
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            change["ApproximateCreationDateTime"] = created.timestamp()
        return {**record, "dynamodb": change, "eventSourceARN": self._stream_arn}


class SqsPoller(_Poller):
    """Receives batches and deletes what the handler did not report as failed."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        function_arn: str,
        *,
        batch_size: int = 10,
        interval: float = 0.05,
    ) -> None:
        super().__init__("asyncagents-sqs-poller", handler, function_arn, interval)
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._batch_size = batch_size

    def poll_once(self) -> bool:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return False
        event = {"Records": [self._lambda_record(message) for message in messages]}
        try:
            result = self._invoke(event) or {}
        except Exception:
            logger.exception("SQS handler failed; the whole batch stays on the queue")
            return True
        failed = {item["itemIdentifier"] for item in result.get("batchItemFailures") or []}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return True

    def _lambda_record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
                "SenderId": attributes.get("SenderId", "local"),
                "ApproximateFirstReceiveTimestamp": attributes.get(
                    "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                ),
            },
            "messageAttributes": {
                name: {"stringValue": value.get("StringValue"), "dataType": value.get("DataType", "String")}
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": "us-east-1",
        }


class ExecutionWatcher(_Poller):
    """EventBridge's "Step Functions Execution Status Change" events, emulated: moto emits none, so this
    lists executions and sends one event per execution that ended in one of ``statuses``, once, through
    ``deliver`` (an asynchronous invocation: EventBridge does not send an event again once Lambda took it).
    ``drop`` decides which events are lost on the way (AWS calls their delivery best effort)."""

    def __init__(
        self,
        sfn: Any,
        state_machine_arn: str,
        statuses: tuple[str, ...],
        handler: Handler,
        function_arn: str,
        *,
        deliver: Callable[[dict[str, Any]], Any] | None = None,
        drop: Callable[[dict[str, Any]], bool] = lambda event: False,
        interval: float = 0.1,
    ) -> None:
        super().__init__("asyncagents-execution-watcher", handler, function_arn, interval)
        self._sfn = sfn
        self._machine = state_machine_arn
        self._statuses = statuses
        self._seen: set[str] = set()
        self._deliver = deliver or self._invoke
        self._drop = drop
        self.dropped = 0

    def poll_once(self) -> bool:
        busy = False
        for status in self._statuses:
            paginator = self._sfn.get_paginator("list_executions")
            for page in paginator.paginate(stateMachineArn=self._machine, statusFilter=status):
                for execution in page["executions"]:
                    if execution["executionArn"] in self._seen:
                        continue
                    self._seen.add(execution["executionArn"])
                    busy = True
                    self._send(self._sfn.describe_execution(executionArn=execution["executionArn"]))
        return busy

    def _send(self, execution: dict[str, Any]) -> None:
        detail = {
            "executionArn": execution["executionArn"],
            "stateMachineArn": self._machine,
            "name": execution["name"],
            "status": execution["status"],
            "startDate": int(execution["startDate"].timestamp() * 1000),
            "stopDate": int(execution["stopDate"].timestamp() * 1000) if execution.get("stopDate") else None,
            "input": execution.get("input"),
            "output": execution.get("output"),
            "error": execution.get("error"),
            "cause": execution.get("cause"),
        }
        event = {
            "version": "0",
            "id": f"local-{execution['name']}",
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": "123456789012",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": "us-east-1",
            "resources": [execution["executionArn"]],
            "detail": detail,
        }
        if self._drop(event):
            self.dropped += 1
            logger.warning("status event of %s dropped (fault injected)", execution["name"])
            return
        self._deliver(event)


class AsyncInvoker:
    """Lambda's asynchronous invocation: the first attempt and ``retries`` more; an event that still fails
    goes to the on-failure destination (an SQS queue) as a Lambda destination record, or is dropped (and
    logged) without one, as on AWS."""

    def __init__(
        self, handler: Handler, function_arn: str, *, retries: int, sqs: Any = None, on_failure_url: str | None = None
    ) -> None:
        self._handler = handler
        self._arn = function_arn
        self._retries = retries
        self._sqs = sqs
        self._on_failure_url = on_failure_url
        self.failures = 0

    def __call__(self, event: dict[str, Any]) -> Any:
        name = self._arn.rsplit(":", 1)[-1]
        error: Exception | None = None
        for _ in range(self._retries + 1):
            try:
                return self._handler(event, LocalContext(function_name=name, invoked_function_arn=self._arn))
            except Exception as failed:  # retried, as Lambda retries an asynchronous invocation
                error = failed
        self.failures += 1
        logger.warning("%s failed %d times; on-failure destination: %s", name, self._retries + 1, self._on_failure_url)
        if self._sqs is not None and self._on_failure_url:
            record = {
                "version": "1.0",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "requestContext": {
                    "requestId": str(uuid.uuid4()),
                    "functionArn": self._arn,
                    "condition": "RetriesExhausted",
                    "approximateInvokeCount": self._retries + 1,
                },
                "requestPayload": event,
                "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                "responsePayload": {"errorType": type(error).__name__, "errorMessage": str(error)},
            }
            self._sqs.send_message(QueueUrl=self._on_failure_url, MessageBody=json.dumps(record, default=str))
        return None


class _Every(threading.Thread):
    """Calls ``tick`` every ``interval`` seconds until stopped (a failing tick is logged; the next one runs)."""

    def __init__(self, name: str, interval: float) -> None:
        super().__init__(name=name, daemon=True)
        self._interval = interval
        self._stopping = threading.Event()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.tick()
            except Exception:
                logger.exception("%s failed", self.name)

    def tick(self) -> None:
        raise NotImplementedError


class ScheduleRunner(_Every):
    """EventBridge Scheduler, emulated (moto stores schedules but never fires them): invokes a function every
    ``interval`` seconds, asynchronously, with the empty input a schedule without ``Input`` sends."""

    def __init__(self, name: str, invoke: Callable[[dict[str, Any]], Any], interval: float) -> None:
        super().__init__(name, interval)
        self._invoke = invoke
        self.runs = 0

    def tick(self) -> None:
        self.runs += 1
        self._invoke({})


class TtlSweeper(_Every):
    """DynamoDB's TTL sweep, emulated (moto never deletes expired items): every ``interval`` seconds, deletes
    the items whose ``ttl`` has passed. AWS takes up to days; locally it is quick, so that what outlives its
    record is seen to."""

    def __init__(self, dynamodb: Any, table_name: str, *, interval: float, attribute: str = "ttl") -> None:
        super().__init__("asyncagents-ttl-sweeper", interval)
        self._dynamodb = dynamodb
        self._table = table_name
        self._attribute = attribute
        self.deleted = 0

    def tick(self) -> None:
        self.sweep_once()

    def sweep_once(self) -> int:
        now = str(int(time.time()))
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "#ttl <= :now",
            "ExpressionAttributeNames": {"#ttl": self._attribute},
            "ExpressionAttributeValues": {":now": {"N": now}},
            "ProjectionExpression": "pk, sk",
        }
        deleted = 0
        while True:
            page = self._dynamodb.scan(**arguments)
            for item in page.get("Items", []):
                try:
                    self._dynamodb.delete_item(
                        TableName=self._table,
                        Key={"pk": item["pk"], "sk": item["sk"]},
                        ConditionExpression="#ttl <= :now",
                        ExpressionAttributeNames={"#ttl": self._attribute},
                        ExpressionAttributeValues={":now": {"N": now}},
                    )
                    deleted += 1
                except Exception:  # rewritten meanwhile (a reused request id): not expired any more
                    continue
            if "LastEvaluatedKey" not in page:
                break
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        self.deleted += deleted
        return deleted
