"""API keys in the requests table: only SHA-256 digests of the secrets are stored."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from asyncagents.data.dynamo import CONDITION_FAILED, error_code, from_item, to_item
from asyncagents.data.table_keys import KEY_ID_PK_PATTERN, KEY_SK, KEYS_OWNER, api_key_id_key, api_key_key
from asyncagents.domain.errors import Conflict


def _plain(key: dict[str, Any]) -> dict[str, str]:
    return {name: value["S"] for name, value in key.items()}


class ApiKeys:
    """Creates, reads and revokes key items. ``client`` is a boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put_key(
        self,
        *,
        secret_hash: str,
        key_id: str,
        kind: str,
        label: str,
        created_at: str,
        user_id: str | None = None,
        expires_at: str | None = None,
        webhook_secret: str | None = None,
        limits: dict[str, int] | None = None,
    ) -> None:
        """The key, and a pointer from its id (to revoke it by id), written together or not at all. A webhook
        secret of the key's own is on the pointer only (the webhook sender reads it by key id)."""
        attributes: dict[str, Any] = {"key_id": key_id, "kind": kind, "label": label, "created_at": created_at}
        optional = {"user_id": user_id, "expires_at": expires_at}
        attributes.update({name: value for name, value in optional.items() if value is not None})
        attributes.update(limits or {})  # the key's own limits (requests_per_second, max_active_requests)
        by_secret = {**attributes, **_plain(api_key_key(secret_hash))}
        if webhook_secret is not None:
            attributes["webhook_secret"] = webhook_secret
        # The pointer is also the key's entry in the listing (the ByOwner index's KEYS partition).
        by_id = {**attributes, **_plain(api_key_id_key(key_id)), "secret_hash": secret_hash, "owner": KEYS_OWNER}
        puts = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(item),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for item in (by_secret, by_id)
        ]
        try:
            self._client.transact_write_items(TransactItems=puts)
        except ClientError as error:
            if error_code(error) == "TransactionCanceledException":
                raise Conflict(f"key {key_id} already exists") from None
            raise

    def get_key(self, secret_hash: str) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self._table, Key=api_key_key(secret_hash))
        item = response.get("Item")
        return from_item(item) if item else None

    def get_key_by_id(self, key_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self._table, Key=api_key_id_key(key_id))
        item = response.get("Item")
        return from_item(item) if item else None

    def revoke_key(self, key_id: str, *, revoked_at: str) -> bool:
        """Mark a key revoked by its id. Returns False when no such key exists."""
        response = self._client.get_item(TableName=self._table, Key=api_key_id_key(key_id), ConsistentRead=True)
        pointer = response.get("Item")
        if not pointer:
            return False
        secret_hash = from_item(pointer)["secret_hash"]
        for key in (api_key_key(secret_hash), api_key_id_key(key_id)):
            self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET revoked_at = :at",
                ExpressionAttributeValues={":at": {"S": revoked_at}},
            )
        return True

    def touch_key(self, key_id: str, *, used_at: str, stale_before: str) -> None:
        """Record that the key was used, unless its last use is already after ``stale_before``. Keys made before
        listings existed join the listing here."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=api_key_id_key(key_id),
                UpdateExpression="SET last_used_at = :at, #owner = :keys",
                ConditionExpression=(
                    "attribute_exists(pk) AND (attribute_not_exists(last_used_at) OR last_used_at < :stale)"
                ),
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={
                    ":at": {"S": used_at},
                    ":keys": {"S": KEYS_OWNER},
                    ":stale": {"S": stale_before},
                },
            )
        except ClientError as error:
            if error_code(error) != CONDITION_FAILED:
                raise

    def list_keys(self, *, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """The keys, newest first (their pointers, without the secret's digest), and the next page's cursor."""
        from asyncagents.data.index_pages import newest_first

        items, next_cursor = newest_first(
            self._client, self._table, KEYS_OWNER, limit=limit, cursor=cursor, sk=KEY_SK, pk_pattern=KEY_ID_PK_PATTERN
        )
        hidden = {"pk", "sk", "owner", "secret_hash", "webhook_secret"}
        listed = [
            {
                **{name: value for name, value in item.items() if name not in hidden},
                "signs_webhooks": "webhook_secret" in item,
            }
            for item in items
        ]
        return listed, next_cursor
