"""Triggers' secrets in Secrets Manager (moto): the stack's TriggerSecrets by name, secrets of yours, rotation."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from asyncagents.data.trigger_secrets import TriggerSecrets
from asyncagents.domain.errors import Unavailable

pytestmark = pytest.mark.integration


@pytest.fixture
def manager():
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def test_the_stack_secret_holds_each_trigger_by_name(manager):
    # Given the stack's secret with one plain entry and one in rotation
    entries = {"github-issue": "gh-secret", "stripe": {"current": "whsec_new", "previous": "whsec_old"}}
    arn = manager.create_secret(Name="trigger-secrets", SecretString=json.dumps(entries))["ARN"]
    secrets = TriggerSecrets(manager, arn, cache_seconds=0)
    # Then each trigger gets its live secrets, both during a rotation
    assert secrets.secrets_for("github-issue", None) == ["gh-secret"]
    assert secrets.secrets_for("stripe", None) == ["whsec_new", "whsec_old"]
    # And a trigger without an entry is a clear 503 naming what to set, never a signature that cannot match
    with pytest.raises(Unavailable, match="put it under 'slack' in the stack's TriggerSecrets secret"):
        secrets.secrets_for("slack", None)


def test_a_secret_of_yours_is_read_by_its_arn(manager):
    plain = manager.create_secret(Name="github-hook", SecretString="It's a Secret to Everybody")["ARN"]
    rotating = manager.create_secret(Name="slack-hook", SecretString=json.dumps({"current": "a", "previous": "b"}))[
        "ARN"
    ]
    secrets = TriggerSecrets(manager, None, cache_seconds=0)
    assert secrets.secrets_for("gh", plain) == ["It's a Secret to Everybody"]
    assert secrets.secrets_for("slack", rotating) == ["a", "b"]
    with pytest.raises(Unavailable, match="cannot read trigger secret"):
        secrets.secrets_for("gh", plain.replace("github-hook", "gone"))
    with pytest.raises(Unavailable, match="TRIGGER_SECRETS_ARN is not set"):
        secrets.secrets_for("gh", None)


def test_reads_are_cached_between_deliveries(manager):
    arn = manager.create_secret(Name="trigger-secrets", SecretString=json.dumps({"t": "one"}))["ARN"]
    secrets = TriggerSecrets(manager, arn, cache_seconds=300)
    assert secrets.secrets_for("t", None) == ["one"]
    manager.put_secret_value(SecretId=arn, SecretString=json.dumps({"t": "two"}))
    assert secrets.secrets_for("t", None) == ["one"]  # a warm container does not call Secrets Manager per delivery
    assert TriggerSecrets(manager, arn, cache_seconds=300).secrets_for("t", None) == ["two"]
