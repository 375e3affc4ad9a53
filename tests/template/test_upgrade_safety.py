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
    "AWS::DynamoDB::Table": ("TableName", "KeySchema", "LocalSecondaryIndexes"),
    "AWS::S3::Bucket": ("BucketName", "ObjectLockEnabled"),
    "AWS::SQS::Queue": ("QueueName", "FifoQueue"),
    "AWS::SecretsManager::Secret": ("Name",),
    "AWS::SNS::Topic": ("TopicName", "FifoTopic"),
    "AWS::Logs::LogGroup": ("LogGroupName",),
    "AWS::Scheduler::ScheduleGroup": ("Name",),
}
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
        for prop in REPLACED_BY[kind]:
            was, will = (old.get("Properties") or {}).get(prop), (new.get("Properties") or {}).get(prop)
            if was != will:
                found.append(f"{name}.{prop} changes ({was!r} -> {will!r}): CloudFormation replaces {kind}")
        for policy in POLICIES:
            if old.get(policy) == "Retain" and new.get(policy) != "Retain":
                found.append(f"{name} loses {policy}: Retain (a replacement or a stack deletion would drop its data)")
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
    ],
)
def test_a_change_that_would_replace_a_stateful_resource_is_caught(change, expected):
    template = load_template()
    changed = copy.deepcopy(template)
    change(changed["Resources"])
    assert any(expected in problem for problem in replacements(template, changed)), replacements(template, changed)
