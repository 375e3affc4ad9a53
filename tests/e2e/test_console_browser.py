"""The operator console in a real browser (Debian's Chromium, headless, driven by Playwright) against the local
stack: a request submitted from the page and its bar advancing to completed, a question answered from the page, a
cancel, a webhook dead letter redriven, scheduled jobs created, paused and deleted, the monitoring figures; and
what a request or a model wrote shown as text, never run. Screenshots go to ``test-artifacts/console/``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import console_tab
from tests.stack_fixture import KEYS, stack_fixture, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("console")]

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    webhooks = {"webhook_retries": 1, "webhook_backoff_seconds": 0.5, "webhook_max_backoff_seconds": 1}
    support = (ROOT / "triggers" / "support-ticket.md").read_text()
    yield from stack_fixture(
        tmp_path_factory,
        {"async": {"result_retention_seconds": 300, **webhooks}},
        triggers={"support-ticket": support},
    )


@pytest.fixture
def page(browser, stack, request) -> Iterator:
    """A fresh tab signed in with the client key (a user of its own) and the admin key; the test fails on any
    error the page logs (a Content Security Policy violation is one), and leaves a screenshot."""
    with console_tab(browser, request.node.name) as tab:
        tab.goto(f"{stack.url}/console")
        tab.fill("#client_key", KEYS.client_key)
        tab.fill("#user_id", f"console-{uuid.uuid4().hex[:6]}")
        tab.fill("#admin_key", KEYS.admin_key)
        tab.click("#signin button[type=submit]")
        tab.wait_for_selector("#new-request")
        yield tab


def submit(page, message: str) -> str:
    before = page.text_content("#notice") or ""
    page.fill("#new-message", message)
    page.click("#new-request button[type=submit]")
    wait_for(lambda: (text := page.text_content("#notice") or "") != before and text.startswith("Accepted: "))
    return (page.text_content("#notice") or "").removeprefix("Accepted: ").strip()


def test_a_request_submitted_from_the_page_advances_its_bar_to_completed(page):
    request_id = submit(page, "[demo step_seconds=1] research a, compare b, write c")
    row = page.locator(f'tr[data-request-id="{request_id}"]')
    row.wait_for()
    wait_for(lambda: 0 < int(row.locator("progress").get_attribute("value") or 0) < 100)  # its events follow it
    other = submit(page, "[demo step_seconds=0.1] one more")  # the list reloads: the first row is a new one
    page.locator(f'tr[data-request-id="{other}"]').wait_for()
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen.append(int(row.locator("progress").get_attribute("value") or 0))
        if row.locator(".status").inner_text() == "completed":
            break
        time.sleep(0.1)
    assert row.locator(".status").inner_text() == "completed"
    assert seen == sorted(seen)  # the bar only moves forward
    # and it moved step by step while the steps ran (its events, not a reload), after the list was rebuilt too
    assert len({value for value in seen if 0 < value < 100}) >= 2, seen
    assert int(row.locator("progress").get_attribute("value")) == 100
    page.select_option("#status-filter", "failed")  # newest first, filtered by status
    page.wait_for_selector("#request-rows >> text=No requests yet.")
    page.select_option("#status-filter", "completed")
    page.locator(f'tr[data-request-id="{request_id}"]').wait_for()
    row = page.locator(f'tr[data-request-id="{request_id}"]')
    row.locator("a").click()
    page.wait_for_selector("#result-text")
    assert "[demo provider" in page.inner_text("#result-text")
    assert page.locator("#step-table .state.done").count() == 3
    wait_for(lambda: page.locator("#events tbody tr").count() >= 5)  # accepted, planned, three steps, completed
    assert "Model calls" in page.inner_text("#usage")


def test_a_question_is_answered_from_the_page(page):
    request_id = submit(page, "[demo ask=1 step_seconds=0.1] draft it, refine it")
    page.locator(f'tr[data-request-id="{request_id}"] a').click()
    page.wait_for_selector("#answer-form", timeout=20_000)
    assert "which option" in page.inner_text("#question-text")
    page.fill("#answer", "the second option")
    page.click("#answer-form button[type=submit]")
    page.wait_for_selector('#summary .status[data-status="completed"]', timeout=20_000)
    assert page.locator("#answer-form").count() == 0
    page.wait_for_selector("#questions >> text=the second option")  # the question and its answer, kept


def test_a_request_is_cancelled_from_the_page(page):
    request_id = submit(page, "[demo step_seconds=3] one, two, three, four")
    page.locator(f'tr[data-request-id="{request_id}"] a').click()
    page.wait_for_selector("#cancel")
    page.click("#cancel")
    page.wait_for_selector('#summary .status[data-status="cancelled"]', timeout=20_000)
    assert page.locator("#cancel").count() == 0
    assert "no partial result" in page.inner_text("#outcome")


def test_a_dead_letter_is_redriven_from_the_page(page, stack, receiver):
    # Given a webhook the receiver refuses (410: dead-lettered at once) for the next few seconds
    until = time.time() + 4
    path = f"/refuse-until/{until}/{uuid.uuid4().hex[:6]}"
    headers = {"X-Muxi-Client-Key": KEYS.client_key, "X-Muxi-User-Id": "dead-letter"}
    body = {"message": "quick", "async": True, "webhook_url": receiver.url(path)}
    assert httpx.post(f"{stack.url}/v1/chat", json=body, headers=headers).status_code == 202
    admin = {"X-Muxi-Admin-Key": KEYS.admin_key}
    letters = f"{stack.url}/v1/admin/webhooks/dead-letters"
    wait_for(lambda: httpx.get(letters, headers=admin).json()["count"], timeout=30)
    # When the operator opens the dead letters and redrives them once the receiver is back
    page.goto(f"{stack.url}/console#/dead-letters")
    page.wait_for_selector("tr.dead-letter")
    assert "1 dead-lettered" in page.inner_text("#dead-letter-count")
    time.sleep(max(0, until - time.time()) + 0.2)
    page.click("#redrive-dead-letters")
    # Then the event is delivered, signed, and the list empties
    delivered = wait_for(lambda: [d for d in receiver.to(path) if d.status == 200], timeout=30)
    assert delivered[0].verified
    page.click("text=Refresh")
    page.wait_for_selector("text=0 dead-lettered", timeout=20_000)


def test_scheduled_jobs_are_created_paused_and_deleted_and_the_figures_shown(page):
    page.click("#nav >> text=Schedules")
    page.select_option("#job-type", "recurring")
    page.fill("#job-schedule", "0 9 * * *")
    page.fill("#job-timezone", "Europe/Paris")
    page.fill("#job-title", "Morning report")
    page.fill("#job-message", "Summarise yesterday")
    page.click("#new-job button[type=submit]")
    row = page.locator("#job-rows tr", has_text="Morning report")
    row.wait_for()
    row.locator("text=Pause").click()
    page.wait_for_selector('#job-rows tr:has-text("Morning report") .job-state:text("paused")')
    page.locator("#job-rows tr", has_text="Morning report").locator("text=Delete").click()
    page.wait_for_selector("#job-rows tr:has-text('Morning report')", state="detached")
    page.click("#nav >> text=Monitoring")
    page.wait_for_selector("[data-figure]")
    assert [page.locator("[data-figure]").nth(i).get_attribute("data-figure") for i in range(4)] == [
        "Average duration",
        "Success rate",
        "Webhook delivery success",
        "Queue depth",
    ]
    page.click("#nav >> text=Triggers")
    page.wait_for_selector("#triggers tbody tr:has-text('support-ticket')")


def test_what_a_request_says_is_shown_as_text_never_run(page, stack):
    hostile = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    request_id = submit(page, f"[demo step_seconds=0.1] {hostile}")
    page.locator(f'tr[data-request-id="{request_id}"] a').click()
    page.wait_for_selector("#result-text")
    assert "<img src=x" in page.inner_text("#result-text")  # shown, as text
    assert page.evaluate("window.pwned") is None
    assert page.locator("#view img, #view script").count() == 0
    served = httpx.get(f"{stack.url}/console")
    policy = served.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert httpx.get(f"{stack.url}/console/secrets.txt").status_code == 404
    assert httpx.post(f"{stack.url}/console").status_code == 404  # the template routes GET only
