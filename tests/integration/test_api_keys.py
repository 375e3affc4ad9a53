"""API keys on moto's DynamoDB, created from the command line: a bound, expiring key reads back as it was made."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from asyncagents import cli
from asyncagents.data.api_keys import ApiKeys
from asyncagents.domain.auth import KeyService
from asyncagents.domain.times import utc_now
from asyncagents.local.stack import create_table
from asyncagents.local.template import read_stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TABLE = "keys-requests"


def test_the_cli_creates_a_key_bound_to_a_user_that_expires(capsys):
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE, read_stack(ROOT / "template.yaml").table_properties)
        # When an operator creates a client key for bob that lasts two days
        argv = ["keys", "create", "--table", TABLE, "--region", "us-east-1", "--user", "bob", "--expires-in-days", "2"]
        argv += ["--requests-per-second", "7"]
        assert cli.main(argv) == 0
        printed = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
        # Then the key printed once authenticates as bob's, with its expiry, from the table
        key = KeyService(ApiKeys(client, TABLE)).authenticate(printed["key"], kind="client")
        assert key.user_id == "bob" == printed["user_id"]
        assert (key.limits.requests_per_second, key.limits.max_active_requests) == (7, None)
        assert key.expires_at is not None
        assert timedelta(days=2) - timedelta(minutes=1) < key.expires_at - utc_now() <= timedelta(days=2)
        assert printed["expires_at"] == key.expires_at.isoformat()
        # And the listing shows it, bound and used, and never its secret
        assert cli.main(["keys", "list", "--table", TABLE, "--region", "us-east-1"]) == 0
        listed = capsys.readouterr().out
        (row,) = [line.split("\t") for line in listed.splitlines() if line.startswith(printed["key_id"])]
        assert row[1:3] == ["client", "bob"] and row[4] != "-"  # last used: just now
        assert printed["key"] not in listed
