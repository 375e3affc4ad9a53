"""The real state machine definition executed by moto, with the real handlers and DynamoDB (moto)."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from unittest import mock

import pytest

from asyncagents import runtime
from asyncagents.api.schemas import ChatRequest
from asyncagents.api.views import request_body
from asyncagents.domain.auth import Principal
from asyncagents.domain.errors import BadRequest, Conflict, NotFound, StaleWrite
from asyncagents.domain.estimator import current_analysis
from asyncagents.domain.statuses import Status
from tests.stack_fixture import new_principal, stack_fixture, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from stack_fixture(tmp_path_factory)


@pytest.fixture
def principal(stack) -> Principal:
    return new_principal(stack)


def submit(principal: Principal, message: str, **fields):
    """Async unless told otherwise: these tests follow the workflow, not the sync wait."""
    body = {"message": message, "async": True, **fields}
    return runtime.current().request_service.submit(principal, ChatRequest.model_validate(body).to_domain())


def wait_terminal(principal: Principal, request_id: str):
    service = runtime.current().request_service
    return wait_for(lambda: (r := service.get(principal, request_id)).status.is_terminal and r)


def execution_of(stack, record) -> dict:
    arn = f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:{record.execution_name}"
    sfn = stack.client("stepfunctions")
    wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING")
    return {
        "status": sfn.describe_execution(executionArn=arn)["status"],
        "events": sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"],
    }


def test_request_runs_plan_steps_finish_with_progress(stack, principal):
    # Given a three-clause request
    submission = submit(principal, "Research AI trends, compare vendors, write a summary")
    request_id = submission.record.request_id

    # When the workflow runs, the statuses and progress seen by a poller only move forward
    seen: list[tuple[str, int]] = []
    service = runtime.current().request_service

    def observe():
        record = service.get(principal, request_id)
        if not seen or seen[-1] != (record.status.value, record.progress):
            seen.append((record.status.value, record.progress))
        return record.status.is_terminal

    wait_for(observe, interval=0.01)

    # Then it completed with every step done, a result, and a successful execution
    final = request_body(service.get(principal, request_id))
    assert final["status"] == "completed"
    assert (final["total_steps"], final["completed_steps"], final["progress"]) == (3, 3, 100)
    assert "Step 3 of 3 (Write a summary): done." in final["result"]["text"]
    assert final["duration_ms"] > 0
    progress = [p for _, p in seen]
    assert progress == sorted(progress)
    assert seen[-1] == ("completed", 100)
    execution = execution_of(stack, submission.record)
    assert execution["status"] == "SUCCEEDED"
    # Step Functions state transitions for n steps stay within 2n + 4.
    entered = [e for e in execution["events"] if e["type"].endswith("StateEntered")]
    assert len(entered) <= 2 * 3 + 4


def test_transient_failures_are_retried_then_complete(stack, principal):
    submission = submit(principal, "flaky step [demo fail_transient=2]")
    final = wait_terminal(principal, submission.record.request_id)
    assert final.status is Status.COMPLETED
    assert final.step_attempts == {"0": 3}
    outputs = runtime.current().step_checkpoints.outputs(final.request_key, final.checkpoint_lineage)
    assert [o["attempts"] for o in outputs] == [3]


def test_permanent_failure_fails_fast_with_error(stack, principal):
    submission = submit(principal, "bad step, never reached [demo fail_permanent=true]")
    final = wait_terminal(principal, submission.record.request_id)
    public = request_body(final)
    assert public["status"] == "failed"
    assert public["error"]["type"] == "provider_error"
    assert public["error"]["retryable"] is False
    assert "fail permanently (step 1)" in public["error"]["message"]
    assert final.step_attempts == {"0": 1, "1": 0}  # no retry of a permanent error, step 2 never ran
    assert execution_of(stack, final)["status"] == "FAILED"


def test_exhausted_retries_fail_as_retryable(stack, principal):
    submission = submit(principal, "always throttled [demo fail_transient=10]")
    final = wait_terminal(principal, submission.record.request_id)
    assert final.status is Status.FAILED
    assert final.error is not None and final.error.retryable is True
    assert final.step_attempts == {"0": 3}  # max_attempts: 3 in the formation


def test_idempotent_accept_starts_one_execution(stack, principal):
    request_id = f"client-chosen-{uuid.uuid4().hex[:6]}"
    first = submit(principal, "only once", request_id=request_id)
    second = submit(principal, "only once", request_id=request_id)
    assert first.record.execution_name == second.record.execution_name
    wait_terminal(principal, request_id)
    # Every execution of this request key (any generation) starts with the key's hash.
    prefix = first.record.request_key.removeprefix("REQ#")
    names = [e["name"] for e in stack.executions() if e["name"].startswith(prefix)]
    assert names == [first.record.execution_name]


def test_a_named_request_keeps_its_name_after_its_result_expired(stack, principal):
    """Its id stays taken for the idempotency window (a remembered item written in the same transaction): a late
    retry is a conflict, and no second execution starts."""
    request_id = f"remembered-{uuid.uuid4().hex[:6]}"
    first = submit(principal, "only once, even late", request_id=request_id)
    wait_terminal(principal, request_id)
    wait_for(lambda: _is_gone(principal, request_id), timeout=6)  # retention: 3 s
    with pytest.raises(Conflict) as refused:
        submit(principal, "only once, even late", request_id=request_id)
    assert refused.value.details["reason"] == "result_expired"
    prefix = first.record.request_key.removeprefix("REQ#")
    assert [e["name"] for e in stack.executions() if e["name"].startswith(prefix)] == [first.record.execution_name]
    items = stack.client("dynamodb").get_item(
        TableName=stack.table_name, Key={"pk": {"S": f"IDEM#{first.record.request_key}"}, "sk": {"S": "IDEM"}}
    )["Item"]
    created = datetime.fromisoformat(first.record.created_at).timestamp()
    assert abs(float(items["remembered_until"]["N"]) - created - 86_400) < 5 and "ttl" in items
    # An unnamed request writes no remembered item (nothing could repeat it)
    unnamed = submit(principal, "anonymous")
    assert "Item" not in stack.client("dynamodb").get_item(
        TableName=stack.table_name, Key={"pk": {"S": f"IDEM#{unnamed.record.request_key}"}, "sk": {"S": "IDEM"}}
    )


def test_terminal_record_expires_on_read_while_item_remains(stack, principal):
    submission = submit(principal, "short lived")
    final = wait_terminal(principal, submission.record.request_id)
    assert final.expires_at is not None
    wait_for(lambda: _is_gone(principal, submission.record.request_id), timeout=6)
    # DynamoDB (and moto) has not deleted the item: the read path enforces retention.
    assert runtime.current().request_records.get(final.request_key) is not None


def _is_gone(principal: Principal, request_id: str) -> bool:
    try:
        runtime.current().request_service.get(principal, request_id)
    except NotFound:
        return True
    return False


def test_terminal_status_cannot_be_rewritten(stack, principal):
    final = wait_terminal(principal, submit(principal, "finish me").record.request_id)
    table = runtime.current().request_records
    for target in (Status.PROCESSING, Status.FAILED, Status.CANCELLED):
        with pytest.raises(StaleWrite) as caught:
            table.transition(final.request_key, to=target, allowed_from={Status.PENDING, Status.PROCESSING})
        assert caught.value.details["current"].status is Status.COMPLETED
    assert table.get(final.request_key).status is Status.COMPLETED


def test_cancel_mid_run_stops_at_next_checkpoint(stack, principal):
    submission = submit(principal, "one, two, three, four [demo step_seconds=0.3]")
    service = runtime.current().request_service
    wait_for(lambda: service.get(principal, submission.record.request_id).completed_steps >= 1, interval=0.01)

    record, already = service.cancel(principal, submission.record.request_id)
    assert record.status is Status.CANCELLED and not already

    wait_for(lambda: execution_of(stack, record)["status"] != "RUNNING")
    final = runtime.current().request_records.get(record.request_key)
    assert final.status is Status.CANCELLED
    assert final.result is None
    assert final.completed_steps < 4
    # A step that was running when the cancel came may leave its checkpoint, never progress or a result.
    outputs = runtime.current().step_checkpoints.outputs(record.request_key, record.checkpoint_lineage)
    assert final.completed_steps <= len(outputs) <= final.completed_steps + 1


def test_list_pages_newest_first_and_rejects_foreign_cursor(stack, principal):
    ids = [submit(principal, f"list item {i}").record.request_id for i in range(5)]
    service = runtime.current().request_service
    page, cursor = service.list(principal, limit=2, cursor=None, status=None)
    rest, end = service.list(principal, limit=10, cursor=cursor, status=None)
    assert [r.request_id for r in page + rest] == list(reversed(ids))
    assert end is None
    other = Principal(key_id=principal.key_id, user_id="someone-else")
    with pytest.raises(BadRequest):
        service.list(other, limit=2, cursor=cursor, status=None)
    with pytest.raises(BadRequest):
        service.list(principal, limit=2, cursor="not-a-cursor", status=None)


def test_completed_requests_teach_the_estimator(stack, principal):
    message = "Translate 'good morning' into French and Italian"
    estimator = runtime.current().estimator
    before = estimator.estimate("test-formation", message)
    final = wait_terminal(principal, submit(principal, message).record.request_id)
    assert final.status is Status.COMPLETED

    # Finish learns right after it writes the completion, which the poll above may see first.
    history = runtime.current().duration_history
    stored = wait_for(lambda: history.get_history(f"test-formation@{current_analysis()}", before.kind), timeout=10)
    assert stored["samples"] >= 1
    after = estimator.estimate("test-formation", message)
    assert after.history_samples == stored["samples"]
    assert after.seconds != before.seconds  # the demo is far faster than the factor table expects
    assert after.seconds < before.seconds


def test_definitions_parsed_at_once_do_not_share_state(stack):
    """moto parses the definition again in each execution's thread. Here the interleaving that once left an
    execution RUNNING for ever in CI is forced: a second parse starts while the first is mid-way, and the first
    ends before the second reads its scope. Both must parse."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    definition = stack.client("stepfunctions").describe_state_machine(stateMachineArn=stack.state_machine_arn)[
        "definition"
    ]
    first_opened, second_looked, first_done = threading.Event(), threading.Event(), threading.Event()
    open_scope, current_scope = Preprocessor._open_query_language_scope, Preprocessor._get_current_query_language
    roles: dict[int, str] = {}

    def opening(preprocessor, tree):
        open_scope(preprocessor, tree)
        if roles.get(threading.get_ident()) == "first" and not first_opened.is_set():
            first_opened.set()
            second_looked.wait(5)

    def looking(preprocessor):
        if roles.get(threading.get_ident()) == "second" and not second_looked.is_set():
            second_looked.set()
            first_done.wait(5)
        return current_scope(preprocessor)

    failures: list[BaseException] = []

    def parse(role: str) -> None:
        roles[threading.get_ident()] = role
        try:
            AmazonStateLanguageParser.parse(definition)
        except BaseException as error:
            failures.append(error)
        finally:
            if role == "first":
                first_done.set()

    with (
        mock.patch.object(Preprocessor, "_open_query_language_scope", opening),
        mock.patch.object(Preprocessor, "_get_current_query_language", looking),
    ):
        first = threading.Thread(target=parse, args=("first",))
        first.start()
        assert first_opened.wait(5)
        second = threading.Thread(target=parse, args=("second",))
        second.start()
        first.join(10)
        second.join(10)
    assert second_looked.is_set() and first_done.is_set()
    assert failures == []


def test_a_cancelled_transaction_leaves_the_tables_stream_flowing(stack):
    """As on DynamoDB: nothing of a cancelled TransactWriteItems reaches the stream, and what comes after does
    (moto replaces the table on rollback; the local stack keeps it, or its stream readers would see no more)."""
    dynamodb, streams = stack.client("dynamodb"), stack.client("dynamodbstreams")
    arn = dynamodb.describe_table(TableName=stack.table_name)["Table"]["LatestStreamArn"]
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    marker = uuid.uuid4().hex
    dynamodb.put_item(TableName=stack.table_name, Item={"pk": {"S": f"TEST#{marker}"}, "sk": {"S": "A"}})
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": stack.table_name, "Item": {"pk": {"S": f"TEST#{marker}"}, "sk": {"S": "B"}}}},
                {
                    "Put": {
                        "TableName": stack.table_name,
                        "Item": {"pk": {"S": f"TEST#{marker}"}, "sk": {"S": "A"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    dynamodb.put_item(TableName=stack.table_name, Item={"pk": {"S": f"TEST#{marker}"}, "sk": {"S": "C"}})
    seen = [
        record["dynamodb"]["Keys"]["sk"]["S"]
        for record in streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
        if record["dynamodb"]["Keys"]["pk"]["S"] == f"TEST#{marker}"
    ]
    assert seen == ["A", "C"]
    assert "Item" not in dynamodb.get_item(
        TableName=stack.table_name, Key={"pk": {"S": f"TEST#{marker}"}, "sk": {"S": "B"}}
    )


def test_a_call_outside_the_functions_policy_is_refused_as_iam_would(stack, principal):
    """The local stack judges each function's DynamoDB calls by its template policy: the plan task may update a
    request record, not an API key (on AWS its role's LeadingKeys condition refuses it)."""
    from botocore.exceptions import ClientError

    current = runtime.current()
    key = current.key_service.create("client", label="not the plan task's to revoke")
    record = submit(principal, "One quick thing").record
    wait_terminal(principal, record.request_id)
    try:
        with stack.permissions.acting_as("RunFunction"):
            # Given the plan task's role, when it touches its request's record, then that is allowed
            assert current.request_records.get(record.request_key) is not None
            # but when it writes to an API key's item, the call is refused, and the refusal is kept
            with pytest.raises(ClientError) as refused:
                current.key_service.revoke(key.key_id)
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "RunFunction is not authorized to perform dynamodb:" in str(refused.value)
        assert f"on the table with leading keys ['KEYID#{key.key_id}']" in str(refused.value)
        assert [function for function, _ in stack.permissions.denials] == ["RunFunction"]
        # and the key was not revoked
        assert current.key_service.authenticate(key.secret, kind="client").key_id == key.key_id
    finally:
        stack.permissions.denials.clear()  # this refusal was the point (the fixture fails on any other)
