"""List cursors: the last key a page read, handed to the client opaque (URL-safe base64) and checked when it
comes back (the caller's own index partition, the key shape this API writes)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from asyncagents.data.table_keys import REQUEST_PK_PATTERN, REQUEST_SK, REQUESTER
from asyncagents.domain.errors import InvalidCursor
from asyncagents.domain.times import parse_iso


def _invalid_cursor() -> InvalidCursor:
    return InvalidCursor("cursor: not a cursor this API returned", details={"field": "cursor"})


def encode_cursor(last_key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(last_key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str,
    owner: str,
    *,
    sk: str = REQUEST_SK,
    pk_pattern: re.Pattern[str] = REQUEST_PK_PATTERN,
    attribute: str = REQUESTER,
) -> dict[str, Any]:
    """The index key a cursor of ``owner``'s partition holds (items keyed ``sk`` and a ``pk`` of ``pk_pattern``,
    partitioned by ``attribute``: requests unless told), or ``InvalidCursor``."""
    try:
        key = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _invalid_cursor() from None
    if not _valid_cursor_key(key, owner, sk, pk_pattern, attribute):
        raise _invalid_cursor()
    return dict(key)


def _valid_cursor_key(key: Any, owner: str, sk: str, pk_pattern: re.Pattern[str], attribute: str) -> bool:
    if not isinstance(key, dict) or set(key) != {"pk", "sk", attribute, "created_at"}:
        return False
    if not all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values()):
        return False
    try:
        parse_iso(key["created_at"]["S"])
    except ValueError:
        return False
    return key[attribute]["S"] == owner and key["sk"]["S"] == sk and pk_pattern.fullmatch(key["pk"]["S"]) is not None
