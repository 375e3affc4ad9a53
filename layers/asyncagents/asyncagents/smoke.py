"""``make smoke``: the end-to-end checks a user cares about, against any deployed stack (or the local one), over
plain HTTP: health and version, an async request polled to completion, its events stream, a sync request, a
cancel, a signed webhook to a receiver you name, a trigger and a one-time schedule when the stack has them, and
the seed's four figures. One line per check (``ok``, ``FAIL`` or ``skip`` and why); exit status 1 if any failed.

It leaves nothing behind: its requests belong to a user of its own (``smoke-<random>``) and expire with the
formation's retention, the one it cancels is cancelled, the schedule it creates is deleted. Each request asks the
model for one word, so a real model costs a few hundred tokens per run.

    python -m asyncagents.smoke --api https://abc.execute-api.eu-west-1.amazonaws.com \\
        [--client-key fmc_...] [--admin-key fma_...] [--webhook-url https://hooks.example.com/x]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

PROMPT = "Smoke test of the deployment: reply with the single word ok."
TERMINAL = {"completed", "failed", "cancelled"}


class Skipped(Exception):
    """The check does not apply to this stack (no admin key, no trigger, no webhook receiver)."""


class Failed(Exception):
    """The check failed; the message says what was seen."""


@dataclass(frozen=True)
class Verdict:
    check: str
    outcome: str  # ok, FAIL, skip
    detail: str

    def line(self) -> str:
        return f"{self.outcome:<4}  {self.check:<15} {self.detail}"


class Smoke:
    def __init__(
        self,
        api: str,
        *,
        client_key: str,
        admin_key: str | None = None,
        webhook_url: str | None = None,
        user_id: str | None = None,
        timeout: float = 300,
        http: httpx.Client | None = None,
    ) -> None:
        self._root = api.rstrip("/").removesuffix("/v1")
        # A user of its own keeps its requests out of anyone's list; a key bound to a user acts as that user.
        user = user_id or f"smoke-{secrets.token_hex(4)}"
        self._client = {"X-Muxi-Client-Key": client_key, "X-Muxi-User-Id": user}
        self._admin = {"X-Muxi-Admin-Key": admin_key} if admin_key else None
        self._webhook_url = webhook_url
        self._timeout = timeout
        self._http = http or httpx.Client(timeout=35)
        self._finished: str | None = None  # a request the events check reads

    def run(self, report: Callable[[Verdict], None] = lambda verdict: print(verdict.line(), flush=True)) -> bool:
        checks = [
            ("health", self.health),
            ("async request", self.async_request),
            ("events stream", self.events_stream),
            ("sync request", self.sync_request),
            ("cancel", self.cancel),
            ("webhook", self.webhook),
            ("trigger", self.trigger),
            ("schedule", self.schedule),
            ("metrics", self.metrics),
        ]
        passed = True
        for name, check in checks:
            started = time.monotonic()
            try:
                detail = check()
                verdict = Verdict(name, "ok", f"{detail} ({time.monotonic() - started:.1f} s)")
            except Skipped as skipped:
                verdict = Verdict(name, "skip", str(skipped))
            except Exception as error:  # every check reports, whatever went wrong in one
                passed = False
                shown = str(error) if isinstance(error, Failed) else f"{type(error).__name__}: {error}"
                verdict = Verdict(name, "FAIL", shown)
            report(verdict)
        return passed

    # -- the checks ----------------------------------------------------------------------------------------

    def health(self) -> str:
        body = self._expect("GET", "/v1/health", 200)
        if body.get("status") != "ok":
            raise Failed(f"status {body.get('status')!r}")
        return f"version {body.get('version', 'unknown')}"

    def async_request(self) -> str:
        accepted = self._expect("POST", "/v1/chat", 202, json={"message": PROMPT, "async": True})
        done = self._until_ended(accepted["request_id"])
        self._finished = done["request_id"]
        return f"{done['request_id']} completed in {done.get('duration_ms', 0) / 1000:.1f} s"

    def events_stream(self) -> str:
        if self._finished is None:
            raise Skipped("no completed request to read (the async request failed)")
        path = f"/v1/requests/{self._finished}/events"
        response = self._http.get(self._root + path, headers={**self._client, "Accept": "text/event-stream"})
        if response.status_code != 200 or not response.headers.get("content-type", "").startswith("text/event-stream"):
            raise Failed(f"{response.status_code} {response.headers.get('content-type')}: {response.text[:200]}")
        kinds = [
            line.removeprefix("event:").strip() for line in response.text.splitlines() if line.startswith("event:")
        ]
        if not kinds or kinds[-1] != "done" or "completed" not in kinds:
            raise Failed(f"events {kinds}: no completed event and done")
        return f"{len(kinds) - 1} events, then done"

    def sync_request(self) -> str:
        response = self._call("POST", "/v1/chat", self._client, json={"message": PROMPT, "async": False})
        if response.status_code == 200:
            body = response.json()
            if body.get("status") != "completed":
                raise Failed(f"200 with status {body.get('status')}")
            return "answered within the sync wait"
        if response.status_code == 202:  # it outlasted the sync wait: it goes on in the background
            done = self._until_ended(response.json()["request_id"])
            return f"answered 202 after the sync wait; completed in {done.get('duration_ms', 0) / 1000:.1f} s"
        raise Failed(f"{response.status_code}: {response.text[:200]}")

    def cancel(self) -> str:
        accepted = self._expect("POST", "/v1/chat", 202, json={"message": PROMPT, "async": True})
        request_id = accepted["request_id"]
        response = self._call("DELETE", f"/v1/requests/{request_id}", self._client)
        if response.status_code == 409:  # a fast model finished it first: nothing wrong with the stack
            raise Skipped(f"{request_id} ended before its cancel landed (409); run again to check a cancel")
        if response.status_code != 200 or response.json().get("status") != "cancelled":
            raise Failed(f"{response.status_code}: {response.text[:200]}")
        final = self._expect("GET", f"/v1/requests/{request_id}", 200)
        if final["status"] != "cancelled":
            raise Failed(f"{request_id} is {final['status']} after its cancel")
        return f"{request_id} cancelled"

    def webhook(self) -> str:
        if not self._webhook_url:
            raise Skipped("no --webhook-url: name a receiver to check signed webhooks")
        body = {"message": PROMPT, "async": True, "webhook_url": self._webhook_url}
        request_id = self._expect("POST", "/v1/chat", 202, json=body)["request_id"]
        self._until_ended(request_id)
        state: dict[str, Any] = {}

        def delivered() -> bool:
            state.update(self._expect("GET", f"/v1/requests/{request_id}", 200).get("webhook") or {})
            return state.get("status") in {"delivered", "failed"}

        self._wait(delivered, what=f"{request_id}'s webhook delivery")
        if state["status"] != "delivered":
            raise Failed(f"webhook {state['status']} after {state.get('attempts')} attempts: {state.get('last_error')}")
        return f"delivered to {self._webhook_url} in {state.get('attempts')} attempt(s); check its signature there"

    def trigger(self) -> str:
        names = self._expect("GET", "/v1/triggers", 200).get("triggers", [])
        details = [self._expect("GET", f"/v1/triggers/{name}", 200) for name in names]
        usable = sorted((d for d in details if d.get("accepts_client_key")), key=lambda d: bool(d.get("when")))
        if not usable:
            raise Skipped("no trigger a client key may fire" if names else "no triggers in this formation")
        chosen = usable[0]  # one without a `when` rule, if there is one
        data: dict[str, Any] = {}
        for field in chosen.get("data_fields", []):  # dotted paths in the event's data: customer.email
            _put(data, field, "smoke")
        for path, accepted in (chosen.get("when") or {}).items():  # an event the trigger fires on
            _put(data, path, accepted[0])
        path = f"/v1/triggers/{chosen['name']}"
        response = self._call("POST", path, self._client, json={"data": data, "use_async": True})
        if response.status_code == 200 and response.json().get("status") == "ignored":
            raise Skipped(f"{chosen['name']} ignored the smoke event ({response.json().get('reason')})")
        if response.status_code != 202:
            raise Failed(f"POST {path}: {response.status_code} {response.text[:300]}")
        done = self._until_ended(response.json()["request_id"])
        return f"{chosen['name']} fired {done['request_id']}, completed"

    def schedule(self) -> str:
        if self._admin is None:
            raise Skipped("no admin key")
        run_at = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        # Created paused: a run stopped between create and delete leaves a job that never fires.
        body = {"type": "one_time", "run_at": run_at, "message": PROMPT, "title": "asyncagents smoke", "enabled": False}
        job = self._expect("POST", "/v1/scheduler/jobs", 201, json=body, admin=True)
        path = f"/v1/scheduler/jobs/{job['id']}"
        try:
            found = self._expect("GET", path, 200, admin=True)
            if found.get("type") != "one_time" or found.get("enabled") is not False:
                raise Failed(f"{job['id']} reads back as {found.get('type')}, enabled={found.get('enabled')}")
        finally:
            deleted = self._call("DELETE", path, self._admin or {})
        if deleted.status_code != 200:
            raise Failed(f"DELETE {path}: {deleted.status_code} {deleted.text[:200]} (delete the job by hand)")
        return f"one-time job created for {run_at}, read back, deleted"

    def metrics(self) -> str:
        if self._admin is None:
            raise Skipped("no admin key")
        figures = self._expect("GET", "/v1/admin/metrics", 200, params={"window": "15m"}, admin=True)
        wanted = ("average_duration_seconds", "success_rate", "webhook_delivery_success_rate", "queue_depth")
        missing = [name for name in wanted if name not in figures]
        if missing:
            raise Failed(f"missing {missing}")
        rate = figures["success_rate"]
        return f"success rate {'-' if rate is None else f'{rate * 100:.0f} %'} over 15 min, the four figures present"

    # -- HTTP ----------------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, headers: dict[str, str], **options: Any) -> httpx.Response:
        """One call; a read is tried again after a throttle, a 5xx or a dropped connection (a write is not: a
        repeated POST would make a second request)."""
        for attempt in range(4):
            last = attempt == 3
            try:
                response = self._http.request(method, self._root + path, headers=headers, **options)
            except httpx.TransportError:
                if method != "GET" or last:
                    raise
                time.sleep(2**attempt)
                continue
            if method != "GET" or last or response.status_code not in (429, 500, 502, 503, 504):
                return response
            time.sleep(min(30.0, float(response.headers.get("Retry-After") or 2**attempt)))
        raise AssertionError("unreachable")

    def _expect(self, method: str, path: str, status: int, *, admin: bool = False, **options: Any) -> dict[str, Any]:
        headers = self._admin if admin and self._admin else self._client
        response = self._call(method, path, headers, **options)
        if response.status_code != status:
            raise Failed(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else {}

    def _until_ended(self, request_id: str) -> dict[str, Any]:
        latest: dict[str, Any] = {}

        def ended() -> bool:
            latest.update(self._expect("GET", f"/v1/requests/{request_id}", 200))
            return latest.get("status") in TERMINAL

        self._wait(ended, what=request_id)
        if latest["status"] != "completed":
            raise Failed(f"{request_id} {latest['status']}: {latest.get('error') or latest.get('message')}")
        return latest

    def _wait(self, done: Callable[[], bool], *, what: str) -> None:
        deadline = time.monotonic() + self._timeout
        pause = 0.5
        while not done():
            if time.monotonic() > deadline:
                raise Failed(f"{what} did not end within {self._timeout:.0f} s")
            time.sleep(pause)
            pause = min(pause * 1.5, 5)


def _put(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path of the event's data (``customer.email``, ``$.action``), keeping what is there."""
    *parents, leaf = path.removeprefix("$.").removeprefix("data.").split(".")
    node = data
    for parent in parents:
        child = node.get(parent)
        if not isinstance(child, dict):  # a template that reads both data.issue and data.issue.title
            child = node[parent] = {}
        node = child
    if not isinstance(node.get(leaf), dict):
        node[leaf] = value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncagents.smoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", required=True, help="the stack's ApiUrl (with or without /v1)")
    parser.add_argument("--client-key", default=os.environ.get("ASYNCAGENTS_CLIENT_KEY"))
    parser.add_argument("--admin-key", default=os.environ.get("ASYNCAGENTS_ADMIN_KEY") or None)
    parser.add_argument("--webhook-url", default=None, help="a receiver of yours: checks a signed webhook to it")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a request may take (default 300)")
    parser.add_argument("--user-id", default=None, help="the user a bound client key acts for (default: smoke-<hex>)")
    args = parser.parse_args(argv)
    if not args.client_key:
        parser.error("a client key is needed: --client-key or ASYNCAGENTS_CLIENT_KEY (CLIENT_KEY= for make smoke)")
    smoke = Smoke(
        args.api,
        client_key=args.client_key,
        admin_key=args.admin_key,
        webhook_url=args.webhook_url,
        user_id=args.user_id,
        timeout=args.timeout,
    )
    passed = smoke.run()
    print("smoke: every check passed" if passed else "smoke: FAILED", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
