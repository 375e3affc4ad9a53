"""What a key's limits cost on the accept path: AWS calls per accept and time per accept, with the limits on and
off, in interleaved pairs on the local stack (moto), medians and their ratio.

    make bench BENCH=bench/limits.py
    make bench BENCH=bench/limits.py BENCH_ARGS="--pairs 200"

The calls are what AWS bills; the times are moto's (slower than DynamoDB, and noisy here): read the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    arguments = parser.parse_args()

    from asyncagents import runtime
    from asyncagents.api.schemas import ChatRequest
    from asyncagents.domain.auth import Principal
    from asyncagents.domain.requests import RequestService
    from tests.stack_fixture import KEYS, start_stack

    with tempfile.TemporaryDirectory() as scratch:
        # Limits high enough never to refuse: the bench measures what they cost when they admit.
        limits = {"requests_per_second": 1000, "max_active_requests": 1000, "max_sync_waits": 100}
        stack = start_stack(Path(scratch), {"limits": limits, "llm": {"demo": {"step_seconds": 0}}})
        try:
            current = runtime.current()
            calls: Counter[str] = Counter()
            here = threading.get_ident()  # the workflow runs in this process too: count this thread's calls only

            def count(model, **_: object) -> None:
                if threading.get_ident() == here:
                    calls.update([model.name])

            current.dynamodb.meta.events.register("before-call.dynamodb", count)
            key = current.key_service.authenticate(KEYS.client_key, kind="client")
            services = {
                "limits on": current.request_service,
                "limits off": RequestService(
                    current.request_records, current.workflow_engine, current.formation, estimator=current.estimator
                ),
            }
            seen: dict[str, list[Counter[str]]] = {name: [] for name in services}
            times: dict[str, list[float]] = {name: [] for name in services}
            order = list(services)
            for index in range(arguments.pairs):
                principal = Principal(key_id=key.key_id, user_id=f"bench-{uuid.uuid4().hex[:8]}")
                for name in order if index % 2 == 0 else reversed(order):
                    new = ChatRequest.model_validate({"message": f"bench {index}", "async": True}).to_domain()
                    calls.clear()
                    began = time.perf_counter()
                    services[name].submit(principal, new)
                    times[name].append(time.perf_counter() - began)
                    seen[name].append(Counter(calls))
            calls.clear()
            current.request_limits.release_active(key.key_id, "0" * 32)  # what the notifier does for each end
            release_calls = sum(calls.values())
        finally:
            stack.stop()

    print(f"# A key's limits on the accept path: {arguments.pairs} interleaved pairs on moto\n")
    print("| | DynamoDB calls per accept (median) | which | time per accept, median |")
    print("|---|---|---|---|")
    for name in services:
        per_accept = [sum(counter.values()) for counter in seen[name]]
        which = sum(seen[name], Counter())
        named = ", ".join(f"{call} {count / arguments.pairs:g}" for call, count in sorted(which.items()))
        median_ms = statistics.median(times[name]) * 1000
        print(f"| {name} | {statistics.median(per_accept):g} | {named} | {median_ms:.1f} ms |")
    ratios = [on / off for on, off in zip(times["limits on"], times["limits off"], strict=True)]
    # moto serialises DynamoDB calls on one lock, shared with the workflows running in this process: each call
    # waits its turn, so this ratio is moto's, not DynamoDB's (single-digit milliseconds a call).
    print(f"\nTime ratio on/off, median of pairs (moto's): {statistics.median(ratios):.2f}")
    print(f"When a request ends, the notifier frees its slot: {release_calls} DynamoDB call.")


if __name__ == "__main__":
    main()
