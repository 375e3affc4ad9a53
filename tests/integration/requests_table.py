"""The requests table on moto's DynamoDB, made from ``template.yaml`` (its indexes, its TTL), and a request written to
it as the API writes one: for the tests of the data layer's request records."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from asyncagents.data.request_records import RequestRecords
from asyncagents.domain.records import request_key
from asyncagents.domain.statuses import Status
from asyncagents.local.stack import create_table
from asyncagents.local.template import read_stack

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def requests_table(name: str) -> Iterator[tuple[Any, RequestRecords]]:
    """A DynamoDB client and the request records of table ``name``, made as the template says."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, name, read_stack(ROOT / "template.yaml").table_properties)
        yield client, RequestRecords(client, name)


def create_request(
    records: RequestRecords,
    request_id: str,
    *,
    created_at: str = "2026-01-01T00:00:00.000000Z",
    user: str = "user",
    now_epoch: float = 0,
    **fields: Any,
) -> str:
    """Write a pending request of ``key_1``'s ``user`` (``fields`` added or replaced) and return its key."""
    key = request_key("key_1", user, request_id)
    written = {
        "request_key": key,
        "request_id": request_id,
        "key_id": "key_1",
        "user_id": user,
        "status": Status.PENDING.value,
        "prompt": "hello",
        "fingerprint": "f",
        "formation_id": "f",
        "execution_name": f"exec-{request_id}",
        "created_at": created_at,
        "questions": {},
        "questions_version": 0,
        **fields,
    }
    assert records.create(written, now_epoch=now_epoch) is None
    return key
