"""Fixtures the end-to-end modules share."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.stack_fixture import KEYS
from tests.support.receiver import WebhookReceiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    """A real webhook receiver on 127.0.0.1 that verifies the stack's signatures (one per module)."""
    with WebhookReceiver(KEYS.webhook_secret) as running:
        yield running


ARTIFACTS = Path(os.environ.get("ASYNCAGENTS_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "console"


def chromium_path() -> str:
    found = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("the console's browser tests need Chromium: `make browser` (apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (the system's: nothing is downloaded), driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield launched
        launched.close()


@contextmanager
def console_tab(browser: Any, name: str) -> Iterator[Any]:
    """A tab of its own; fails the test on any error the page logs (a Content Security Policy violation is one)
    and keeps a screenshot of how it ended in test-artifacts/console/<name>.png."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    tab.on("dialog", lambda dialog: dialog.accept())  # the console confirms what cannot be undone
    try:
        yield tab
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        context.close()
    assert not problems, problems
