"""Foundation benchmarks: cold init, AWS calls per operation, state transitions, layer size.

    make bench                      # all of them
    make bench BENCH_ARGS="--only cold --repeat 15"

(a) cold init: a fresh interpreter imports each function's handler module and creates the AWS clients
    it uses, against the floor ``python -c "import boto3; boto3.client('dynamodb')"``, interleaved in
    pairs (see cold_init.py; ``--against REV`` adds an earlier commit's functions to the pairs).
(b) AWS API calls per operation on the local stack, counted with botocore ``before-call`` hooks on the
    API handler's thread, after a warm-up (goal: async accept 2, status poll 1), and Step Functions
    states entered for a request of n steps (goal <= 2n + 4).
(c) the unzipped size of the built layer (``sam build`` into a temporary folder, with its bytecode; goal <= 30 MB).
(d) dollars per million requests by component for n = 1, 3, 8, 20 steps (bench/cost.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    print(f"\n{title}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=False)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)))


def bench_cold(repeat: int, against: str | None, python: str | None) -> None:
    from cold_init import measure, runtime_interpreter

    interpreter = runtime_interpreter(python) if python else None
    header = ["what", "ms (median)", "x floor (paired)", "x library reference", f"x {against}" if against else ""]
    title = f"(a) cold init, {repeat} rounds of fresh interpreters ({python or 'this Python'}), interleaved"
    _table(title, header, measure(repeat, against, interpreter))


class _CallCounter:
    """Counts AWS API calls made on threads that are inside the API handler."""

    def __init__(self) -> None:
        self.inside = threading.local()
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def hook(self, model: Any = None, **_: Any) -> None:
        if getattr(self.inside, "active", False) and model is not None:
            with self.lock:
                self.calls.append(f"{model.service_model.service_name}:{model.name}")

    def take(self) -> list[str]:
        with self.lock:
            taken, self.calls = self.calls, []
        return taken


def bench_calls() -> None:
    import httpx

    from asyncagents.local import http as local_http
    from asyncagents.local.stack import LocalKeys, LocalStack

    counter = _CallCounter()
    original_call = local_http.ApiGateway.call

    def counted_call(self: Any, event: dict[str, Any]) -> dict[str, Any]:
        counter.inside.active = True
        try:
            return original_call(self, event)
        finally:
            counter.inside.active = False

    local_http.ApiGateway.call = counted_call  # type: ignore[method-assign]
    keys = LocalKeys(client_key="fmc_bench", admin_key="fma_bench", webhook_secret="whsec_bench")
    with tempfile.TemporaryDirectory() as folder:
        formation = Path(folder) / "formation.yaml"
        formation.write_text("llm:\n  demo:\n    step_seconds: 0\n")
        stack = LocalStack(root=ROOT, formation_path=formation, keys=keys, port=0).start()
        try:
            from asyncagents import runtime

            # The API's own clients (created once per container); moto's interpreter uses others.
            for client in (runtime.current().dynamodb, runtime.current().stepfunctions):
                client.meta.events.register("before-call.*.*", counter.hook)
            headers = {"X-Muxi-Client-Key": keys.client_key, "X-Muxi-User-Id": "bench"}
            client = httpx.Client(base_url=stack.url, headers=headers, timeout=30)
            warm = client.post("/v1/chat", json={"message": "warm up", "async": True}).json()["request_id"]
            client.get(f"/v1/requests/{warm}")
            counter.take()

            rows: list[list[Any]] = []
            accepted = client.post("/v1/chat", json={"message": "count me", "async": True}).json()
            accept_calls = counter.take()
            rows.append(["async accept (POST /v1/chat)", len(accept_calls), 2, ", ".join(accept_calls)])
            client.get(f"/v1/requests/{accepted['request_id']}")
            poll_calls = counter.take()
            rows.append(["status poll (GET /v1/requests/{id})", len(poll_calls), 1, ", ".join(poll_calls)])
            client.delete(f"/v1/requests/{warm}")
            cancel_calls = counter.take()
            rows.append(["cancel of a finished request (409)", len(cancel_calls), "-", ", ".join(cancel_calls)])
            asking = client.post("/v1/chat", json={"message": "ask me [demo ask=0]", "async": True}).json()
            for _ in range(600):
                if client.get(f"/v1/requests/{asking['request_id']}").json()["status"] == "awaiting_clarification":
                    break
                time.sleep(0.05)
            counter.take()
            client.post(f"/v1/requests/{asking['request_id']}/clarification", json={"answer": "yes"})
            answer_calls = counter.take()
            rows.append(["answer a question (POST .../clarification)", len(answer_calls), "-", ", ".join(answer_calls)])
            _table(
                "(b) AWS API calls per operation (local stack, warm container)",
                ["operation", "calls", "goal", "which"],
                rows,
            )

            rows = []
            sfn = stack.client("stepfunctions")
            # Independent steps form one wave; a chain ("a then b then c") is one wave per step, the worst case.
            for steps, shape, joiner in [
                (n, s, j) for n in (1, 3, 5, 8) for s, j in (("independent", ", "), ("chain", " then "))
            ]:
                if steps == 1 and shape == "chain":
                    continue
                message = joiner.join(f"part {i}" for i in range(steps))
                request_id = client.post("/v1/chat", json={"message": message, "async": True}).json()["request_id"]
                record = _wait_done(client, request_id)
                arn = f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:{record}"
                while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                    time.sleep(0.05)
                events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
                entered = sum(1 for e in events if e["type"].endswith("StateEntered"))
                goal = 2 * steps + 4
                rows.append([steps, shape, entered, goal, "ok" if entered <= goal else "over"])
            _table(
                "(b) Step Functions states entered per request",
                ["steps n", "plan shape", "entered", "goal 2n+4", ""],
                rows,
            )
            client.close()
        finally:
            stack.stop()
            local_http.ApiGateway.call = original_call  # type: ignore[method-assign]


def _wait_done(client: Any, request_id: str) -> str:
    from asyncagents import runtime
    from asyncagents.domain.records import request_key

    for _ in range(600):
        if client.get(f"/v1/requests/{request_id}").json()["status"] in {"completed", "failed", "cancelled"}:
            break
        time.sleep(0.05)
    key_id = runtime.current().key_service.authenticate("fmc_bench", kind="client").key_id
    record = runtime.current().request_records.get(request_key(key_id, "bench", request_id))
    return str(record.execution_name)


def bench_layer() -> None:
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            ["make", "-s", "build", f"BUILD_DIR={folder}"],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        layer = Path(folder) / "AsyncAgentsLayer"
        total = sum(p.stat().st_size for p in layer.rglob("*") if p.is_file())
        biggest: dict[str, int] = {}
        for p in (layer / "python").iterdir():
            size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
            biggest[p.name] = size
        rows = [[name, f"{size / 1e6:.2f}"] for name, size in sorted(biggest.items(), key=lambda kv: -kv[1])[:6]]
        rows.append(["TOTAL (goal <= 30 MB)", f"{total / 1e6:.2f}"])
        _table("(c) built layer, unzipped", ["content", "MB"], rows)


def bench_webhooks(latency: float = 0.5, batch: int = 10) -> None:
    """A batch of ``batch`` deliveries to an endpoint that takes ``latency`` s, through the sender's
    handler (concurrent), against the same deliveries made one after another."""
    sys.path.insert(0, str(ROOT))
    from asyncagents import runtime
    from asyncagents.api.schemas import ChatRequest
    from asyncagents.domain.auth import Principal
    from asyncagents.domain.webhooks.events import webhook_message_for
    from asyncagents.local.stack import LocalKeys, LocalStack
    from tests.support.receiver import WebhookReceiver

    keys = LocalKeys(client_key="fmc_bench", admin_key="fma_bench", webhook_secret="whsec_bench")
    with tempfile.TemporaryDirectory() as folder, WebhookReceiver(keys.webhook_secret) as receiver:
        formation = Path(folder) / "formation.yaml"
        formation.write_text("llm:\n  demo:\n    step_seconds: 0\n")
        stack = LocalStack(root=ROOT, formation_path=formation, keys=keys, port=0).start()
        try:
            key = runtime.current().key_service.authenticate(keys.client_key, kind="client")
            principal = Principal(key_id=key.key_id, user_id="bench")
            service = runtime.current().request_service
            records = [
                service.submit(
                    principal, ChatRequest.model_validate({"message": f"item {i}", "async": True}).to_domain()
                ).record
                for i in range(batch)
            ]
            messages = []
            for record in records:
                while not (current := service.get(principal, record.request_id)).status.is_terminal:
                    time.sleep(0.05)
                if current.status.value != "completed":
                    raise RuntimeError(
                        f"benchmark request {current.request_id} ended {current.status}: {current.error}"
                    )
                # Point the finished request at the slow endpoint (no status change: no automatic event).
                pointed = runtime.current().request_records.set_fields(
                    record.request_key, {"webhook_url": receiver.url(f"/hang/{latency}")}
                )
                message = webhook_message_for({"status": "processing"}, pointed.model_dump(mode="json"))
                messages.append(message)
            handler = stack.lambdas.handler_of("asyncagents-local-WebhookSenderFunction")
            event = {
                "Records": [
                    {
                        "messageId": f"m{i}",
                        "receiptHandle": f"r{i}",
                        "body": message.model_dump_json(),
                        "attributes": {
                            "ApproximateReceiveCount": "1",
                            "SentTimestamp": "0",
                            "SenderId": "bench",
                            "ApproximateFirstReceiveTimestamp": "0",
                        },
                        "messageAttributes": {},
                        "md5OfBody": "",
                        "eventSource": "aws:sqs",
                        "eventSourceARN": stack.queue_arns["WebhookQueue"],
                        "awsRegion": "us-east-1",
                    }
                    for i, message in enumerate(messages)
                ]
            }
            from asyncagents.local.lambdas import LocalContext

            context = LocalContext(function_name="WebhookSenderFunction", invoked_function_arn="bench")
            handler(event, context)  # warm container: clients, secret and connection pool exist (as in steady state)
            started = time.perf_counter()
            result = handler(event, context)
            concurrent = time.perf_counter() - started
            assert not result.get("batchItemFailures"), result
            sender = runtime.current().webhook_sender
            started = time.perf_counter()
            for message in messages:
                sender.handle(message.model_dump_json(), attempt=1, receipt_handle="sequential")
            sequential = time.perf_counter() - started
            verified = sum(1 for d in receiver.deliveries if d.verified)
        finally:
            stack.stop()
    _table(
        f"(webhooks) {batch} deliveries to an endpoint with {latency} s latency",
        ["how", "seconds", "x one latency"],
        [
            ["batch handler (concurrent)", f"{concurrent:.2f}", f"{concurrent / latency:.1f}"],
            ["one after another", f"{sequential:.2f}", f"{sequential / latency:.1f}"],
            ["speed-up", f"{sequential / concurrent:.1f}x", f"({verified} of {3 * batch} signatures verified)"],
        ],
    )


def main() -> int:
    import logging

    logging.getLogger("moto").setLevel(logging.CRITICAL)  # moto logs whole state trees at ERROR
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["cold", "calls", "layer", "webhooks", "cost"], action="append")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--against", metavar="REVISION", help="cold init: also measure this commit, in pairs")
    parser.add_argument(
        "--python", metavar="INTERPRETER", help="cold init with this Python ('runtime': the layer's 3.12)"
    )
    args = parser.parse_args()
    chosen = args.only or ["cold", "calls", "layer", "webhooks", "cost"]
    print(json.dumps({"python": sys.version.split()[0], "machine": os.uname().machine}))
    if "cold" in chosen:
        bench_cold(args.repeat, args.against, args.python)
    if "calls" in chosen:
        bench_calls()
    if "layer" in chosen:
        bench_layer()
    if "webhooks" in chosen:
        bench_webhooks()
    if "cost" in chosen:  # dollars per million requests by component (bench/cost.py, which also runs alone)
        sys.path.insert(0, str(ROOT / "bench"))
        import cost

        cost.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
