"""Which completion notices were sent, or are being sent (``pk=NOTICE#<delivery id>``), kept a week by TTL: longer
than a notice is ever redelivered (the webhook queue's retry window is three days at most)."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from asyncagents.data.dynamo import CONDITION_FAILED, error_code, serialize

_KEEP_SECONDS = 7 * 86_400
# A notice is sent within a minute (``webhook_timeout`` is 60 s at most): a claim this old was abandoned (its sender
# was stopped), and another delivery of the notice may take it over.
_CLAIM_SECONDS = 300
_SENDING = "sending"


class SentNoticeMarks:
    """Claims on notices (a conditional write each): of the deliveries of one notice that run at once (the stream's
    repeat and SQS's), one sends it. ``client`` is a boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _key(self, delivery_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"NOTICE#{delivery_id}"}, "sk": {"S": "NOTICE"}}

    def claim(self, delivery_id: str) -> str | None:
        """Take the sending of a notice (``None``), or say why not: ``"sent"``, or ``"sending"`` (another delivery of
        it is sending it now, or was stopped while it did: its claim lapses)."""
        now = int(time.time())
        item = {
            **self._key(delivery_id),
            "notice_state": serialize(_SENDING),
            "claimed_until": serialize(now + _CLAIM_SECONDS),
            "ttl": serialize(now + _KEEP_SECONDS),
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                # A mark without a state is a sent notice's (written before claims were).
                ConditionExpression="attribute_not_exists(pk) OR (notice_state = :sending AND claimed_until < :now)",
                ExpressionAttributeValues={":sending": serialize(_SENDING), ":now": serialize(now)},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != CONDITION_FAILED:
                raise
            held: dict[str, Any] = dict(error.response).get("Item") or {}  # type: ignore[assignment]
            return _SENDING if held.get("notice_state") == {"S": _SENDING} else "sent"
        return None

    def mark_sent(self, delivery_id: str) -> None:
        """The notice was sent: no delivery of it sends it again."""
        item = {
            **self._key(delivery_id),
            "notice_state": serialize("sent"),
            "ttl": serialize(int(time.time()) + _KEEP_SECONDS),
        }
        self._client.put_item(TableName=self._table, Item=item)

    def release(self, delivery_id: str) -> None:
        """The notice could not be sent now: its retry (or another delivery of it) may claim it again."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._key(delivery_id),
                ConditionExpression="notice_state = :sending",
                ExpressionAttributeValues={":sending": serialize(_SENDING)},
            )
        except ClientError as error:
            if error_code(error) != CONDITION_FAILED:
                raise
