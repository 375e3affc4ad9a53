"""Each function's DynamoDB policy in template.yaml, as the local stack enforces it (IAM's reading of
``dynamodb:LeadingKeys``): each function reaches its own item types and no others."""

from __future__ import annotations

from typing import Any

import pytest

from asyncagents.local.table_permissions import TablePermissions

TABLE = "requests"
REQ, STEP = "REQ#" + "a" * 32, "STEP#lineage#0001"


def key(pk: str, sk: str = "X") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def update(pk: str) -> tuple[str, dict[str, Any]]:
    return "UpdateItem", {"TableName": TABLE, "Key": key(pk)}


def get(pk: str) -> tuple[str, dict[str, Any]]:
    return "GetItem", {"TableName": TABLE, "Key": key(pk)}


def put(pk: str) -> tuple[str, dict[str, Any]]:
    return "PutItem", {"TableName": TABLE, "Item": key(pk)}


def delete(pk: str) -> tuple[str, dict[str, Any]]:
    return "DeleteItem", {"TableName": TABLE, "Key": key(pk)}


def query(value: str, *, index: str | None = None, attribute: str = "pk") -> tuple[str, dict[str, Any]]:
    request = {
        "TableName": TABLE,
        "KeyConditionExpression": "#k = :v AND begins_with(sk, :p)",
        "ExpressionAttributeNames": {"#k": attribute},
        "ExpressionAttributeValues": {":v": {"S": value}, ":p": {"S": "STEP#"}},
    }
    return "Query", {**request, "IndexName": index} if index else request


def transaction(*pks: str) -> tuple[str, dict[str, Any]]:
    return "TransactWriteItems", {"TransactItems": [{"Put": {"TableName": TABLE, "Item": key(pk)}} for pk in pks]}


def read_listed(*pks: str) -> tuple[str, dict[str, Any]]:
    return "BatchGetItem", {"RequestItems": {TABLE: {"Keys": [key(pk) for pk in pks], "ConsistentRead": True}}}


def forget_history(*pks: str) -> tuple[str, dict[str, Any]]:
    return "BatchWriteItem", {"RequestItems": {TABLE: [{"DeleteRequest": {"Key": key(pk)}} for pk in pks]}}


@pytest.fixture(scope="module")
def permissions(template) -> TablePermissions:
    found = TablePermissions.from_template(template, "RequestsTable")
    found.table_name = TABLE
    return found


def allowed(permissions: TablePermissions, function: str, call: tuple[str, dict[str, Any]]) -> bool:
    import json

    operation, request = call
    with permissions.acting_as(function):
        return permissions.refusal(f"DynamoDB_20120810.{operation}", json.dumps(request)) is None


@pytest.mark.parametrize(
    ("function", "call", "expected"),
    [
        # The workflow's tasks reach request records (and their step checkpoints) only.
        ("RunFunction", update(REQ), True),
        ("RunFunction", update("KEYID#key_0123456789abcdef"), False),
        ("RunFunction", update("SLOTS#active:key_1"), False),
        ("RunFunction", put(REQ), True),  # a step's checkpoint
        ("RunFunction", query(REQ), True),
        ("RunFunction", put("HIST#formation"), False),
        ("RunFunction", update("HIST#formation"), True),  # it teaches the estimator
        ("RunFunction", get("KEY#hash"), False),
        ("RunFunction", update("BREAKER#bedrock#model"), True),  # the model provider's circuit breaker
        ("ApiFunction", get("BREAKER#bedrock#model"), True),  # when_open: refuse
        ("ApiFunction", update("BREAKER#bedrock#model"), False),  # only the workflow changes it
        ("WebhookSenderFunction", put("NOTICE#dlv_1-slack"), True),  # a notice is claimed, then marked sent
        ("WebhookSenderFunction", delete("NOTICE#dlv_1-slack"), True),  # or its claim given back
        ("WebhookSenderFunction", delete(REQ), False),
        ("WebhookSenderFunction", put(REQ), False),
        ("MarkFailedFunction", update(REQ), True),
        ("ClarifyFunction", update("AUDIT#" + "0" * 32), False),
        ("ReconcileFunction", update("RATE#key_1"), False),
        # The sweeper lists the unfinished (the index's key is the shard), and mends records.
        ("SweeperFunction", query("OPEN#a", index="Unfinished", attribute="open_shard"), True),
        ("SweeperFunction", query(REQ), False),
        ("SweeperFunction", update(REQ), True),
        # The notifier frees slots and nothing else; the webhook sender reads key secrets, never key hashes.
        ("NotifyFunction", update("SLOTS#active:key_1"), True),
        ("NotifyFunction", update(REQ), False),
        ("WebhookSenderFunction", get("KEYID#key_0123456789abcdef"), True),
        ("WebhookSenderFunction", get("KEY#hash"), False),
        # A scheduled slot writes its run, its request and the request's name, in one transaction.
        ("RunScheduleFunction", put("JOBS"), True),
        ("RunScheduleFunction", transaction(REQ, "IDEM#" + "a" * 32), True),
        ("RunScheduleFunction", update("KEYID#key_1"), False),
        ("RunScheduleFunction", ("DeleteItem", {"TableName": TABLE, "Key": key("JOBS")}), False),
        # The API: every item type but the estimator's writes, which an admin may only forget in a batch.
        ("ApiFunction", transaction(REQ, "IDEM#" + "a" * 32), True),
        ("ApiFunction", transaction(REQ, "HIST#formation"), False),  # judged item by item
        ("ApiFunction", forget_history("HIST#formation", "HIST#formation"), True),
        ("ApiFunction", forget_history("HIST#formation", REQ), False),  # for all the batch's keys
        ("ApiFunction", query("OWNER#abc", index="ByOwner", attribute="owner"), True),
        ("ApiFunction", query("OWNER#abc", index="RequestsByOwner", attribute="requester"), True),
        ("ApiFunction", query("OWNER#abc", index="RequestKeysByOwner", attribute="listed_for"), True),
        ("RunFunction", query("OWNER#abc", index="RequestKeysByOwner", attribute="listed_for"), False),
        ("ApiFunction", read_listed(REQ, "REQ#" + "b" * 32), True),  # a list page's records
        ("ApiFunction", read_listed(REQ, "KEY#hash"), False),  # the list reads request records only
        ("ApiFunction", query("OPEN#a", index="Unfinished", attribute="open_shard"), True),  # queue depth
        ("RunFunction", query("OWNER#abc", index="ByOwner", attribute="owner"), False),
        ("ApiFunction", ("Scan", {"TableName": TABLE}), False),
        ("ApiFunction", ("DeleteItem", {"TableName": TABLE, "Key": key(REQ)}), False),
        ("ApiFunction", ("GetItem", {"TableName": "another-table", "Key": key(REQ)}), False),
    ],
)
def test_each_function_reaches_its_own_item_types(permissions, function, call, expected):
    assert allowed(permissions, function, call) is expected


def test_calls_of_no_function_are_not_judged_and_refusals_are_kept(permissions):
    # Given a call made by the test itself (no function), then nothing judges it
    assert permissions.refusal("DynamoDB_20120810.Scan", "{}") is None
    # When a function is refused, then the refusal is kept with its reason
    before = len(permissions.denials)
    assert not allowed(permissions, "NotifyFunction", put("KEY#x"))
    function, reason = permissions.denials[before]
    assert function == "NotifyFunction" and "dynamodb:PutItem on the table with leading keys ['KEY#x']" in reason


def test_for_all_values_passes_a_call_with_no_leading_key_and_unknown_conditions_are_refused():
    template = {
        "Resources": {
            "T": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]},
            },
            "F": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Policies": [
                        {
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "dynamodb:*",
                                    "Resource": {"Fn::GetAtt": ["T", "Arn"]},
                                    "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": "REQ#*"}},
                                }
                            ]
                        }
                    ]
                },
            },
        }
    }
    permissions = TablePermissions.from_template(template, "T")
    # As on AWS (a known pitfall of ForAllValues): a Scan has no leading key, so the condition holds
    assert allowed(permissions, "F", ("Scan", {"TableName": "t"}))
    assert not allowed(permissions, "F", get("KEY#x"))
    statement = template["Resources"]["F"]["Properties"]["Policies"][0]["Statement"][0]
    statement["Condition"] = {"StringEquals": {"aws:SourceVpc": "vpc-1"}}
    with pytest.raises(ValueError, match="not modelled"):
        TablePermissions.from_template(template, "T")
