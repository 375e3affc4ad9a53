"""The template's DynamoDB permissions, enforced on the local stack.

moto checks no IAM. Here every DynamoDB call a function makes is judged against the statements of that
function's ``Policies`` in ``template.yaml`` (actions, the table or one of its indexes, and a
``dynamodb:LeadingKeys`` condition), as IAM would judge it, and a call the role would be refused on AWS is
refused here with ``AccessDeniedException``. So every test that runs the local stack also checks that each
function's least-privilege policy lets it do its job; ``TablePermissions.denials`` keeps what was refused.

What is modelled: Allow statements (no Deny is used), action wildcards, the table ARN and ``/index/<name>``
resources, ``ForAllValues:StringLike``/``StringEquals`` on ``dynamodb:LeadingKeys`` (a request with no leading
key, a Scan, passes such a condition, as on AWS); transactions judged item by item (``ConditionCheckItem`` for
a condition check), batches by the set of their keys. Any other condition is refused when the template is read,
so that nothing is silently allowed.
"""

from __future__ import annotations

import contextvars
import fnmatch
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_TARGET_PREFIX = "DynamoDB_20120810."
_LEADING_KEYS = "dynamodb:LeadingKeys"
_CONDITIONS = {"ForAllValues:StringLike": True, "ForAllValues:StringEquals": False}  # operator → wildcards?
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_KEY_CONDITION = re.compile(r"(#?[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)")

TABLE = ""  # the resource of a call on the table itself; an index is named by its index name


@dataclass(frozen=True)
class Grant:
    """One Allow statement's part about the table: actions, resources, and the leading keys it allows."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]  # TABLE, an index name, or "*" (any index)
    leading_keys: tuple[str, ...] | None = None  # patterns; None: no condition
    wildcards: bool = True

    def allows(self, action: str, resource: str, leading_keys: frozenset[str]) -> bool:
        if not any(fnmatch.fnmatchcase(f"dynamodb:{action}".lower(), pattern.lower()) for pattern in self.actions):
            return False
        if not any(granted == resource or (granted == "*" and resource != TABLE) for granted in self.resources):
            return False
        if self.leading_keys is None:
            return True
        # ForAllValues: every leading key of the request matches one pattern (and no key at all passes).
        return all(any(self._matches(key, pattern) for pattern in self.leading_keys) for key in leading_keys)

    def _matches(self, key: str, pattern: str) -> bool:
        return fnmatch.fnmatchcase(key, pattern) if self.wildcards else key == pattern


@dataclass(frozen=True)
class Access:
    """One authorization IAM makes for a call: the action, the resource and the call's leading keys."""

    action: str
    resource: str
    leading_keys: frozenset[str]

    def describe(self) -> str:
        where = "table" if self.resource == TABLE else f"index {self.resource}"
        return f"dynamodb:{self.action} on the {where} with leading keys {sorted(self.leading_keys)}"


@dataclass
class TablePermissions:
    """Each function's grants on the requests table, and the calls refused so far."""

    grants: dict[str, list[Grant]]
    hash_keys: dict[str, str]  # TABLE or index name → its partition key attribute
    table_name: str = ""
    denials: list[tuple[str, str]] = field(default_factory=list)
    # What each function did: (function, action, resource, leading key up to its first "#"): the evidence a
    # policy is drawn from.
    used: set[tuple[str, str, str, str]] = field(default_factory=set)
    # A context variable rather than a thread-local: threads a function starts with its context (the run's
    # steps) act for it too.
    _acting: contextvars.ContextVar[str | None] = field(
        default_factory=lambda: contextvars.ContextVar("acting_function", default=None)
    )

    @classmethod
    def from_template(cls, template: dict[str, Any], table_logical_id: str) -> TablePermissions:
        resources = template["Resources"]
        table = resources[table_logical_id]["Properties"]
        hash_keys = {TABLE: _hash_key(table["KeySchema"])}
        for index in table.get("GlobalSecondaryIndexes", []):
            hash_keys[index["IndexName"]] = _hash_key(index["KeySchema"])
        grants = {
            logical_id: [
                grant
                for statement in _statements(resource["Properties"].get("Policies", []))
                if (grant := _grant_of(statement, table_logical_id)) is not None
            ]
            for logical_id, resource in resources.items()
            if resource["Type"] == "AWS::Serverless::Function"
        }
        return cls(grants=grants, hash_keys=hash_keys)

    @contextmanager
    def acting_as(self, function: str) -> Iterator[None]:
        """Calls made in this context meanwhile are the function's (its role's)."""
        token = self._acting.set(function)
        try:
            yield
        finally:
            self._acting.reset(token)

    def acting(self) -> str | None:
        """The function this context's calls are made for, if any."""
        return self._acting.get()

    def act_as(self, function: str) -> None:
        """For a thread that works for one function all its life (a function's worker pool)."""
        self._acting.set(function)

    def refusal(self, target: str, body: bytes | str | None) -> str | None:
        """Why the calling function's role may not make this call; None when it may (or no function calls)."""
        function = self._acting.get()
        if function is None or not target.startswith(_TARGET_PREFIX):
            return None
        request = json.loads(body or "{}")
        grants = self.grants.get(function, [])
        for access in self.accesses(target.removeprefix(_TARGET_PREFIX), request):
            for key in access.leading_keys or {""}:
                self.used.add((function, access.action, access.resource, key.split("#", 1)[0]))
            if not any(grant.allows(access.action, access.resource, access.leading_keys) for grant in grants):
                reason = f"{function} is not authorized to perform {access.describe()}"
                self.denials.append((function, reason))
                return reason
        return None

    def accesses(self, operation: str, request: dict[str, Any]) -> list[Access]:
        """What IAM authorizes for one DynamoDB call."""
        if operation in ("TransactWriteItems", "TransactGetItems"):
            return [
                Access(
                    "GetItem" if kind == "Get" else _TRANSACT_ACTIONS[kind],
                    self._resource(part),
                    self._item_keys([part.get("Key") or part.get("Item") or {}]),
                )
                for entry in request.get("TransactItems", [])
                for kind, part in entry.items()
            ]
        if operation in ("BatchWriteItem", "BatchGetItem"):
            found = []
            for table, entries in request.get("RequestItems", {}).items():
                items = (
                    [e.get("PutRequest", {}).get("Item") or e.get("DeleteRequest", {}).get("Key") for e in entries]
                    if isinstance(entries, list)
                    else entries.get("Keys", [])
                )
                found.append(Access(operation, self._resource({"TableName": table}), self._item_keys(items)))
            return found
        resource = self._resource(request)
        if operation == "Query":
            return [Access(operation, resource, self._queried_keys(request, resource))]
        item = request.get("Key") or request.get("Item")
        return [Access(operation, resource, self._item_keys([item] if item else []))]

    def _resource(self, request: dict[str, Any]) -> str:
        if self.table_name and request.get("TableName") not in (None, self.table_name):
            return f"table {request.get('TableName')}"  # another table: nothing grants it
        return str(request.get("IndexName") or TABLE)

    def _item_keys(self, items: list[dict[str, Any] | None]) -> frozenset[str]:
        attribute = self.hash_keys[TABLE]
        return frozenset(str(_scalar(item[attribute])) for item in items if item and attribute in item)

    def _queried_keys(self, request: dict[str, Any], resource: str) -> frozenset[str]:
        names = request.get("ExpressionAttributeNames", {})
        values = request.get("ExpressionAttributeValues", {})
        attribute = self.hash_keys.get(resource)
        return frozenset(
            str(_scalar(values[value]))
            for name, value in _KEY_CONDITION.findall(request.get("KeyConditionExpression", ""))
            if names.get(name, name) == attribute and value in values
        )


def _hash_key(schema: list[dict[str, str]]) -> str:
    return next(part["AttributeName"] for part in schema if part["KeyType"] == "HASH")


def _scalar(value: dict[str, Any]) -> Any:
    return next(iter(value.values()))


def _statements(policies: list[Any]) -> Iterator[dict[str, Any]]:
    """Every statement of a function's policies; both branches of a condition (either may be deployed)."""
    for policy in policies:
        if isinstance(policy, dict) and "Fn::If" in policy:
            yield from _statements([branch for branch in policy["Fn::If"][1:] if isinstance(branch, dict)])
        elif isinstance(policy, dict):
            yield from policy.get("Statement", [])


def _grant_of(statement: dict[str, Any], table_logical_id: str) -> Grant | None:
    if statement.get("Effect") != "Allow":
        raise ValueError(f"only Allow statements are modelled: {statement}")
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    if not any(str(action).lower().startswith("dynamodb:") for action in actions):
        return None
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    granted = tuple(r for r in (_table_resource(resource, table_logical_id) for resource in resources) if r is not None)
    if not granted:
        return None
    condition = statement.get("Condition")
    if condition is None:
        return Grant(actions=tuple(actions), resources=granted)
    (operator, tests), *others = condition.items()
    if others or operator not in _CONDITIONS or list(tests) != [_LEADING_KEYS]:
        raise ValueError(f"condition not modelled by the local stack: {condition}")
    patterns = tests[_LEADING_KEYS]
    patterns = tuple(patterns if isinstance(patterns, list) else [patterns])
    return Grant(actions=tuple(actions), resources=granted, leading_keys=patterns, wildcards=_CONDITIONS[operator])


def _table_resource(resource: Any, table_logical_id: str) -> str | None:
    if resource == {"Fn::GetAtt": [table_logical_id, "Arn"]}:
        return TABLE
    if isinstance(resource, dict) and isinstance(resource.get("Fn::Sub"), str):
        text = resource["Fn::Sub"]
        prefix = f"${{{table_logical_id}.Arn}}/index/"
        if text.startswith(prefix):
            return text.removeprefix(prefix)
    return None  # another resource (the table's stream, another service)
