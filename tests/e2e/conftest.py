"""Fixtures the end-to-end modules share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stack_fixture import KEYS
from tests.support.receiver import WebhookReceiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    """A real webhook receiver on 127.0.0.1 that verifies the stack's signatures (one per module)."""
    with WebhookReceiver(KEYS.webhook_secret) as running:
        yield running
