"""Upgrades keep data: against the last release's template (``releases/<version>/template.yaml``), no stateful
resource (the table, the bucket, the secrets, the queues, the topics, the log groups, the schedule group) may
disappear, change type, change a property whose change makes CloudFormation replace it, or lose a ``Retain``
policy. A replacement of the table would take every API key, job and in-flight request with it.

When a release is cut, its template is copied to ``releases/<version>/template.yaml`` (``make release-baseline``)
and becomes the baseline of the next.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from asyncagents import __version__

from .helpers import REPO_ROOT, load_template

pytestmark = pytest.mark.template

RELEASES = REPO_ROOT / "releases"
# Per stateful type, the properties whose change CloudFormation makes by replacing the resource (its user
# guide's "Update requires: Replacement").
REPLACED_BY = {
    "AWS::DynamoDB::Table": ("TableName", "KeySchema", "LocalSecondaryIndexes", "ImportSourceSpecification"),
    "AWS::S3::Bucket": ("BucketName", "BucketNamePrefix"),
    "AWS::SQS::Queue": ("QueueName", "FifoQueue"),
    "AWS::SecretsManager::Secret": ("Name",),
    "AWS::SNS::Topic": ("TopicName", "FifoTopic"),
    "AWS::Logs::LogGroup": ("LogGroupName",),
    "AWS::Scheduler::ScheduleGroup": ("Name",),
    # A new mapping starts the table's stream over (TRIM_HORIZON): a day of status changes notified again.
    "AWS::Lambda::EventSourceMapping": ("EventSourceArn", "StartingPosition"),
    # A new API is a new URL: every client, SDK and provider webhook (triggers) points at the old one.
    "AWS::Serverless::HttpApi": (),
    "AWS::ApiGatewayV2::Api": (),
}
# Properties whose change rewrites the value in place: the secrets operators stored or receivers hold.
OVERWRITTEN_BY = {"AWS::SecretsManager::Secret": ("SecretString", "GenerateSecretString")}
POLICIES = ("DeletionPolicy", "UpdateReplacePolicy")


def last_release() -> Path:
    versions = [p for p in RELEASES.glob("*/template.yaml") if re.fullmatch(r"\d+\.\d+\.\d+", p.parent.name)]
    assert versions, "no release baseline in releases/<version>/template.yaml"
    return max(versions, key=lambda p: tuple(int(part) for part in p.parent.name.split(".")))


def replacements(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What in ``after`` would replace or delete a stateful resource of ``before`` on upgrade."""
    found = []
    now = after.get("Resources", {})
    for name, old in before.get("Resources", {}).items():
        kind = old.get("Type")
        if kind not in REPLACED_BY:
            continue
        new = now.get(name)
        if new is None:
            found.append(f"{name} ({kind}) is gone: CloudFormation would delete it")
            continue
        if new.get("Type") != kind:
            found.append(f"{name} changes type {kind} -> {new.get('Type')}: replaced")
            continue
        before_props, after_props = old.get("Properties") or {}, new.get("Properties") or {}
        for prop in REPLACED_BY[kind]:
            was, will = before_props.get(prop), after_props.get(prop)
            if was != will:
                found.append(f"{name}.{prop} changes ({was!r} -> {will!r}): CloudFormation replaces {kind}")
        for prop in OVERWRITTEN_BY.get(kind, ()):
            if before_props.get(prop) != after_props.get(prop):
                found.append(f"{name}.{prop} changes: CloudFormation overwrites the value kept in it")
        if old.get("Condition") != new.get("Condition"):
            found.append(f"{name} Condition {old.get('Condition')!r} -> {new.get('Condition')!r}: deleted where false")
        if kind == "AWS::DynamoDB::Table":
            found += _index_changes(name, before_props, after_props)
        for policy in POLICIES:
            if old.get(policy) == "Retain" and new.get(policy) != "Retain":
                found.append(f"{name} loses {policy}: Retain (a replacement or a stack deletion would drop its data)")
    return found


def _index_changes(name: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """CloudFormation adds or removes one global secondary index per update and changes none in place."""
    was = {index["IndexName"]: index for index in before.get("GlobalSecondaryIndexes") or []}
    will = {index["IndexName"]: index for index in after.get("GlobalSecondaryIndexes") or []}
    found = []
    if len(set(was) ^ set(will)) > 1:
        found.append(f"{name}: indexes {sorted(set(was) ^ set(will))} added or removed in one update (one at most)")
    for index in set(was) & set(will):
        for prop in ("KeySchema", "Projection"):
            if was[index].get(prop) != will[index].get(prop):
                found.append(f"{name}: index {index}'s {prop} changes in place (CloudFormation refuses it)")
    return found


def test_this_template_keeps_every_stateful_resource_of_the_last_release():
    baseline = last_release()
    assert replacements(load_template(baseline), load_template()) == [], f"against {baseline.relative_to(REPO_ROOT)}"


def test_the_baseline_is_this_version_or_an_earlier_one():
    newest = tuple(int(part) for part in last_release().parent.name.split("."))
    assert newest <= tuple(int(part) for part in __version__.split("."))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r["RequestsTable"]["Properties"]["KeySchema"].reverse(), "RequestsTable.KeySchema changes"),
        (lambda r: r["RequestsTable"]["Properties"].update(TableName="requests"), "RequestsTable.TableName changes"),
        (lambda r: r.pop("RequestsTable"), "RequestsTable (AWS::DynamoDB::Table) is gone"),
        (lambda r: r["RequestsTable"].pop("DeletionPolicy"), "RequestsTable loses DeletionPolicy"),
        (lambda r: r["WebhookQueue"]["Properties"].update(FifoQueue=True), "WebhookQueue.FifoQueue changes"),
        (lambda r: r["ArtifactsBucket"].update(Type="AWS::S3::AccessPoint"), "ArtifactsBucket changes type"),
        (lambda r: r["TriggerSecrets"]["Properties"].update(SecretString='{"x": 1}'), "TriggerSecrets.SecretString"),
        (lambda r: r["RequestsTable"].update(Condition="VerifiesJwt"), "RequestsTable Condition"),
        (lambda r: r.pop("HttpApi"), "HttpApi (AWS::Serverless::HttpApi) is gone"),
        (
            lambda r: r["RequestsTable"]["Properties"]["GlobalSecondaryIndexes"][0].update(
                Projection={"ProjectionType": "KEYS_ONLY"}
            ),
            "index ByOwner's Projection changes in place",
        ),
        (
            lambda r: r["RequestsTable"]["Properties"]["GlobalSecondaryIndexes"].extend(
                [{"IndexName": "A", "KeySchema": []}, {"IndexName": "B", "KeySchema": []}]
            ),
            "added or removed in one update",
        ),
    ],
)
def test_a_change_that_would_replace_a_stateful_resource_is_caught(change, expected):
    template = load_template()
    changed = copy.deepcopy(template)
    change(changed["Resources"])
    assert any(expected in problem for problem in replacements(template, changed)), replacements(template, changed)
