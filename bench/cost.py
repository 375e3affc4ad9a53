"""What a request costs on AWS, by component, from what it does on the local stack: dollars per million requests of
n steps (n = 1, 3, 8, 20; independent steps and chains), model tokens excluded.

    make bench BENCH=bench/cost.py
    make bench BENCH=bench/cost.py BENCH_ARGS="--steps 3 --model-seconds 4"
    make bench BENCH=bench/cost.py BENCH_ARGS="--steps 3 --prompt-bytes 2000"   # a message with context
    make bench BENCH=bench/cost.py BENCH_ARGS="--instruction-chars 250"         # a plan as a model writes it

Counted on the local stack, per request, across every function: Step Functions states entered (Standard bills
each transition), Lambda invocations and their measured durations at each function's configured memory,
DynamoDB write and read units (from the sizes of the items written and read, the indexes' copies included, as
on-demand capacity bills them), SQS requests, API Gateway calls. The prices are in ``PRICES`` (us-east-1 list
prices), in one place. Durations are moto's and this machine's (slower than AWS): read them as an upper bound;
``--model-seconds`` adds the time a step function waits on a real model (the demo provider does not wait). Each
shape runs ``--repeat`` times (3); the counts repeat exactly, and the run with the median Lambda cost is shown.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

# us-east-1 list prices, USD.
PRICES = {
    "step_functions_standard_transition": 0.025 / 1000,
    "lambda_request": 0.20 / 1_000_000,
    "lambda_gb_second_arm": 0.0000133334,
    "dynamodb_write_unit": 0.625 / 1_000_000,  # on-demand write request unit (1 KB)
    "dynamodb_read_unit": 0.125 / 1_000_000,  # on-demand read request unit (4 KB strongly consistent)
    "sqs_request": 0.40 / 1_000_000,
    "http_api_request": 1.00 / 1_000_000,
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
}
WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
# Issue 18's goals (infrastructure only): (steps, shape) → (what, the column, at most).
TARGETS = [
    ((3, "independent"), "dollars per million 3-step requests", "total $/M", 100.0),
    ((3, "chain"), "dollars per million 3-step chains", "total $/M", 100.0),
    ((20, "chain"), "dollars per million 20-step chains", "total $/M", 200.0),
    ((3, "independent"), "DynamoDB write units per 3-step request", "WRU", 15.0),
]
# Periodic work, not any one request's (the sweeper's cost is per stack: a few queries every few minutes).
PERIODIC = {"SweeperFunction"}


def item_size(attributes: dict[str, Any]) -> int:
    """DynamoDB's size of an item (names and values, in bytes), as its documentation counts it."""
    return sum(len(name.encode()) + _value_size(value) for name, value in attributes.items())


def _value_size(value: dict[str, Any]) -> int:
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return len(inner.strip("-").replace(".", "").lstrip("0")) // 2 + 2
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: element}) for element in inner)
    if kind == "L":
        return 3 + sum(1 + _value_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(len(name.encode()) + 1 + _value_size(element) for name, element in inner.items())
    raise ValueError(kind)


def _is_s3(request: Any) -> bool:
    host = urlsplit(str(request.url)).hostname or ""
    return host.startswith("s3.") or ".s3." in host or host.startswith("s3-")


class Meter:
    """Every AWS call the functions make (who, which, what it cost in DynamoDB units), and each invocation."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.lock = threading.Lock()
        self.calls: Counter[tuple[str, str]] = Counter()
        self.write_units: Counter[str] = Counter()
        self.read_units: Counter[str] = Counter()
        self.invocations: list[tuple[str, float]] = []
        self.indexes = self._indexes()
        # The API's work counts while the request is accepted; the bench's own polling afterwards does not.
        self.api_open = True

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.write_units.clear()
            self.read_units.clear()
            self.invocations.clear()

    def _indexes(self) -> dict[str, tuple[str, str, tuple[str, ...]]]:
        """Index name → (its partition key, its projection type, the other attributes it copies: its sort key and,
        for INCLUDE, the projected attributes)."""
        table = self.stack.spec.table_properties
        return {
            index["IndexName"]: (
                next(k["AttributeName"] for k in index["KeySchema"] if k["KeyType"] == "HASH"),
                index["Projection"]["ProjectionType"],
                (
                    *(k["AttributeName"] for k in index["KeySchema"] if k["KeyType"] == "RANGE"),
                    *index["Projection"].get("NonKeyAttributes", []),
                ),
            )
            for index in table.get("GlobalSecondaryIndexes", [])
        }

    def install(self) -> None:
        from unittest import mock

        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.process_request
        meter = self

        def process_request(stubber: Any, request: Any) -> Any:
            target = request.headers.get("X-Amz-Target", "")
            target = target.decode() if isinstance(target, bytes) else target
            function = meter.stack.permissions.acting()
            ignored = not function or function in PERIODIC or (function == "ApiFunction" and not meter.api_open)
            # EMF lines become metrics through the logs on AWS: the local stack's PutMetricData is no AWS call.
            if not ignored and not target and _is_s3(request):  # REST, no target: the bucket's objects
                answer = original(stubber, request)
                operation = {"PUT": "PutObject", "GET": "GetObject"}.get(request.method)
                if operation:
                    with meter.lock:
                        meter.calls[(function, f"S3.{operation}")] += 1
                return answer
            if ignored or not target or target.startswith("GraniteServiceVersion"):
                return original(stubber, request)
            service, _, operation = target.partition(".")
            body = json.loads(request.body or "{}")
            before = meter._items_written(operation, body) if service.startswith("DynamoDB_") else []
            answer = original(stubber, request)
            with meter.lock:
                meter.calls[(function, f"{service.split('_')[0]}.{operation}")] += 1
                if service.startswith("DynamoDB_"):
                    meter._count_units(function, operation, body, before, answer)
            return answer

        patch = mock.patch.object(BotocoreStubber, "process_request", process_request)
        patch.start()
        self.stack._patches.append(patch)
        acting_as = self.stack.permissions.acting_as

        @contextlib.contextmanager
        def timed(function: str) -> Iterator[None]:
            started = time.perf_counter()
            with acting_as(function):
                try:
                    yield
                finally:
                    if function not in PERIODIC and (function != "ApiFunction" or meter.api_open):
                        with meter.lock:
                            meter.invocations.append((function, time.perf_counter() - started))

        self.stack.permissions.acting_as = timed

    # -- DynamoDB units ------------------------------------------------------------------------------

    def _table(self) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        from asyncagents.local.stack import ACCOUNT, REGION

        return dynamodb_backends[ACCOUNT][REGION].get_table(self.stack.table_name)

    def _item(self, key: dict[str, Any]) -> dict[str, Any] | None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        item = self._table().get_item(DynamoType(key["pk"]), DynamoType(key["sk"]))
        return item.to_json()["Attributes"] if item is not None else None

    def _writes_of(self, operation: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
        """(operation, key, transactional) of each item a call writes."""
        if operation == "TransactWriteItems":
            return [
                (kind, part.get("Key") or {"pk": part["Item"]["pk"], "sk": part["Item"]["sk"]}, True)
                for entry in body["TransactItems"]
                for kind, part in entry.items()
                if kind != "ConditionCheck"
            ]
        if operation == "BatchWriteItem":
            return [
                ("Put" if "PutRequest" in entry else "Delete", _key_of(entry), False)
                for entries in body["RequestItems"].values()
                for entry in entries
            ]
        if operation in WRITES:
            return [(operation, body.get("Key") or {"pk": body["Item"]["pk"], "sk": body["Item"]["sk"]}, False)]
        return []

    def _items_written(self, operation: str, body: dict[str, Any]) -> list[tuple[dict[str, Any], Any, bool]]:
        return [(key, self._item(key), transactional) for _, key, transactional in self._writes_of(operation, body)]

    def _count_units(self, function: str, operation: str, body: dict[str, Any], before: list[Any], answer: Any) -> None:
        status = answer[0] if isinstance(answer, tuple) else 200
        for key, old, transactional in before:
            new = self._item(key)
            if status != 200 and old == new:
                continue  # a refused conditional write still costs a unit on DynamoDB
            size = max(item_size(old or {}), item_size(new or {}))
            units = max(1, math.ceil(size / 1024)) * (2 if transactional else 1)
            for partition, projection, copied in self.indexes.values():
                was, now = (old or {}).get(partition), (new or {}).get(partition)
                if not (was or now):
                    continue  # not in this index (a sparse index, another item type)
                moved = bool(was) and bool(now) and was != now  # a new partition: a delete and a put
                if projection == "ALL" and old != new:
                    units += max(1, math.ceil(item_size(new or old or {}) / 1024)) * (1 + moved)
                elif was != now:
                    units += (was is not None) + (now is not None)
                elif any((old or {}).get(name) != (new or {}).get(name) for name in copied):
                    units += 1  # a projected attribute changed: the (small) index item is rewritten
            self.write_units[function] += units
        if operation in ("GetItem", "Query", "BatchGetItem"):
            payload = json.loads(answer[2]) if isinstance(answer, tuple) else {}
            batch = [item for items in payload.get("Responses", {}).values() for item in items]
            items = payload.get("Items") or batch or ([payload["Item"]] if payload.get("Item") else [])
            size = sum(item_size(item) for item in items)
            consistent = "IndexName" not in body and (
                bool(body.get("ConsistentRead"))
                or any(part.get("ConsistentRead") for part in body.get("RequestItems", {}).values())
            )
            self.read_units[function] += max(1, math.ceil(size / 4096)) * (1 if consistent else 0.5)


def _key_of(entry: dict[str, Any]) -> dict[str, Any]:
    if "DeleteRequest" in entry:
        return entry["DeleteRequest"]["Key"]
    item = entry["PutRequest"]["Item"]
    return {"pk": item["pk"], "sk": item["sk"]}


def memory_of(template: dict[str, Any]) -> dict[str, int]:
    """Each function's MemorySize in the template (its own, or the Globals')."""
    default = int(template["Globals"]["Function"].get("MemorySize", 128))
    return {
        name: int(resource["Properties"].get("MemorySize", default))
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def measure(stack: Any, meter: Meter, client: Any, receiver: str, message: str) -> dict[str, Any]:
    meter.reset()
    meter.api_open = True
    sfn = stack.client("stepfunctions")
    accepted = client.post("/v1/chat", json={"message": message, "async": True, "webhook_url": receiver}).json()
    meter.api_open = False
    request_id = accepted["request_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        view = client.get(f"/v1/requests/{request_id}").json()
        if view["status"] in ("completed", "failed") and (view.get("webhook") or {}).get("status") == "delivered":
            break
        time.sleep(0.1)
    time.sleep(1.5)  # the last stream records (the webhook bookkeeping) reach the notifier
    from asyncagents import runtime
    from asyncagents.domain.records import request_key

    key_id = runtime.current().key_service.authenticate(stack.keys.client_key, kind="client").key_id
    record = runtime.current().request_records.get(request_key(key_id, "bench", request_id))
    arn = f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:{record.execution_name}"
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    with meter.lock:
        return {
            "status": record.status.value,
            # Each state entered, and each retry of a Task (billed as a transition too): a Task's every attempt
            # is scheduled once.
            "transitions": sum(
                1
                for e in events
                if e["type"] == "TaskScheduled"
                or (e["type"].endswith("StateEntered") and e["type"] != "TaskStateEntered")
            ),
            "invocations": list(meter.invocations),
            "calls": Counter(meter.calls),
            "write_units": sum(meter.write_units.values()),
            "write_units_by": dict(meter.write_units),
            "read_units": sum(meter.read_units.values()),
            # the one API call a client makes per request when it takes the webhook (no polling)
            "api_calls": 1,
        }


def dollars(measured: dict[str, Any], memory: dict[str, int], model_seconds: float, steps: int) -> dict[str, float]:
    """Dollars per million requests, by component."""
    gb_seconds = sum(memory[function] / 1024 * seconds for function, seconds in measured["invocations"])
    model_calls = steps + 2  # a plan, each step, the answer
    # One after the other (max_concurrency 1): steps run at once share the run's wait, so this is an upper bound.
    gb_seconds += model_calls * model_seconds * memory["RunFunction"] / 1024
    sqs = sum(count for (_, call), count in measured["calls"].items() if call.startswith("AmazonSQS"))
    sqs += 2 * sum(
        1 for function, _ in measured["invocations"] if function == "WebhookSenderFunction"
    )  # receive, delete
    per_request = {
        "Step Functions": measured["transitions"] * PRICES["step_functions_standard_transition"],
        "Lambda requests": len(measured["invocations"]) * PRICES["lambda_request"],
        "Lambda duration": gb_seconds * PRICES["lambda_gb_second_arm"],
        "DynamoDB writes": measured["write_units"] * PRICES["dynamodb_write_unit"],
        "DynamoDB reads": measured["read_units"] * PRICES["dynamodb_read_unit"],
        "SQS": sqs * PRICES["sqs_request"],
        "API Gateway": measured["api_calls"] * PRICES["http_api_request"],
        "S3": sum(
            count * PRICES["s3_put" if call == "S3.PutObject" else "s3_get"]
            for (_, call), count in measured["calls"].items()
            if call.startswith("S3.")
        ),
    }
    return {name: value * 1_000_000 for name, value in per_request.items()}


# Each function's handler folder and the clients its first call creates (bench/cold_init.py measures their time).
INIT = {
    "ApiFunction": ("api", ["dynamodb", "stepfunctions"]),
    "RunFunction": ("run", ["dynamodb", "s3"]),
    "MarkFailedFunction": ("mark_failed", ["dynamodb"]),
    "ClarifyFunction": ("clarify", ["dynamodb"]),
    "NotifyFunction": ("notify", ["dynamodb", "sqs"]),
    "WebhookSenderFunction": ("webhook_sender", ["dynamodb", "sqs", "secretsmanager"]),
    "ReconcileFunction": ("reconcile", ["dynamodb"]),
    "SweeperFunction": ("sweeper", ["dynamodb", "stepfunctions"]),
    "RunScheduleFunction": ("run_schedule", ["dynamodb", "stepfunctions"]),
}


def init_memory() -> dict[str, float]:
    """Peak resident memory (MiB) of each function after its init (its handler imported, its clients made), each
    in a fresh interpreter, as Lambda's init runs it."""
    import subprocess

    found = {}
    for function, (folder, clients) in INIT.items():
        code = "\n".join(
            [
                "import importlib.util as u, resource",
                "from asyncagents import runtime",
                f"s = u.spec_from_file_location('app', {str(ROOT / 'functions' / folder / 'app.py')!r})",
                "m = u.module_from_spec(s); s.loader.exec_module(m)",
                *(f"getattr(runtime.current(), {name!r})" for name in clients),
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
            ]
        )
        environment = {**os.environ, "TABLE_NAME": "bench", "FORMATION_PATH": str(ROOT / "formation.yaml")}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)
        found[function] = int(done.stdout.split()[-1]) / 1024
    return found


# Daily caps on the formation and on each key (--spend-caps): each model call reserves and settles on two counters.
SPEND_CAPS = (
    "spend:\n  prices:\n    demo-clauses-v1: {input_per_million: 3.0, output_per_million: 15.0}\n"
    "  formation:\n    daily: {usd: 1000}\n  per_key:\n    daily: {usd: 100}\n"
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="*", default=[1, 3, 8, 20])
    parser.add_argument("--model-seconds", type=float, default=0.0, help="time each model call waits (default 0)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per shape; the median's figures are shown")
    parser.add_argument("--detail", action="store_true", help="also print the calls and units by function")
    parser.add_argument("--memory", action="store_true", help="only each function's memory after init, and its size")
    parser.add_argument(
        "--spend-caps", action="store_true", help="with daily spend caps on the formation and on each key"
    )
    parser.add_argument(
        "--prompt-bytes",
        type=int,
        default=0,
        help="pad each request's message to about this size (default: the bare 'part 0, part 1, ...')",
    )
    parser.add_argument(
        "--instruction-chars",
        type=int,
        default=0,
        help="lengthen each part (so each planned step's instruction) to about this many characters, as a model's"
        " plan has them (default: 'part 0', ...)",
    )
    args = parser.parse_args(argv)
    if args.memory:
        from asyncagents.local.template import load_template

        configured = memory_of(load_template(ROOT / "template.yaml"))
        print("\nfunction                 peak RSS after init (MiB)  configured (MB)")
        for function, mebibytes in init_memory().items():
            print(f"{function:24} {mebibytes:26.0f}  {configured[function]:15}")
        return

    import httpx

    from asyncagents.local.stack import LocalKeys, LocalStack

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver = f"http://127.0.0.1:{server.server_address[1]}/hook"
    keys = LocalKeys(client_key="fmc_bench", admin_key="fma_bench", webhook_secret="whsec_bench")
    rows: list[list[Any]] = []
    details: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        formation = Path(folder) / "formation.yaml"
        formation.write_text(
            "llm:\n  demo:\n    step_seconds: 0\n"
            "overlord:\n  workflow:\n    max_steps: 20\n    max_concurrency: 0\n"
            "limits:\n  requests_per_second: 0\n  max_active_requests: 0\n" + (SPEND_CAPS if args.spend_caps else "")
        )
        stack = LocalStack(root=ROOT, formation_path=formation, keys=keys, port=0).start()
        try:
            meter = Meter(stack)
            meter.install()
            from asyncagents.local.template import load_template

            memory = memory_of(load_template(ROOT / "template.yaml"))
            headers = {"X-Muxi-Client-Key": keys.client_key, "X-Muxi-User-Id": "bench"}
            with httpx.Client(base_url=stack.url, headers=headers, timeout=60) as client:
                measure(stack, meter, client, receiver, "warm up")
                for steps in args.steps:
                    for shape, joiner in (("independent", ", "), ("chain", " then ")):
                        if steps == 1 and shape == "chain":
                            continue
                        parts = (padded(f"part {i}", args.instruction_chars) for i in range(steps))
                        message = padded(joiner.join(parts), args.prompt_bytes)
                        # Counts repeat exactly; durations are noisy here: the run with the median Lambda cost.
                        runs = [measure(stack, meter, client, receiver, message) for _ in range(args.repeat)]
                        costs = sorted(
                            ((dollars(run, memory, args.model_seconds, steps), run) for run in runs),
                            key=lambda pair: pair[0]["Lambda duration"],
                        )
                        cost, measured = costs[len(costs) // 2]
                        rows.append(
                            [
                                steps,
                                shape,
                                measured["transitions"],
                                len(measured["invocations"]),
                                measured["write_units"],
                                round(measured["read_units"], 1),
                            ]
                            + [f"{value:,.2f}" for value in cost.values()]
                            + [f"{sum(cost.values()):,.2f}"]
                        )
                        if args.detail:
                            calls = ", ".join(f"{f}:{c}={n}" for (f, c), n in sorted(measured["calls"].items()))
                            details.append(f"{steps} {shape}: units by function {measured['write_units_by']}; {calls}")
        finally:
            stack.stop()
            server.shutdown()
    header = ["n", "steps", "transitions", "invocations", "WRU", "RRU", *cost.keys(), "total $/M"]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    print(
        "\nDollars per million requests by component (us-east-1 list prices; model tokens excluded;"
        f" each model call waits {args.model_seconds:g} s)"
    )
    print("  ".join(str(h).rjust(w) for h, w in zip(header, widths, strict=False)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=False)))
    print("\nprices assumed:", ", ".join(f"{name} ${value:.10g}" for name, value in PRICES.items()))
    print_targets(header, {(row[0], row[1]): row for row in rows})
    for line in details:
        print(line)


_FILLER = "for the quarterly review of the northern region accounts and the suppliers they depend on "


def padded(message: str, size: int) -> str:
    """``message`` with its last clause lengthened (no punctuation: the demo planner makes no more steps of it) to
    about ``size`` bytes, as real requests carry context."""
    missing = size - len(message)
    return message if missing <= 0 else message + " " + (_FILLER * (missing // len(_FILLER) + 1))[:missing].strip()


def print_targets(columns: list[str], rows: dict[tuple[int, str], list[Any]]) -> None:
    """Each goal of issue 18 that the shapes measured cover, with its figure."""
    lines = []
    for shape, what, column, most in TARGETS:
        if shape in rows:
            figure = float(str(rows[shape][columns.index(column)]).replace(",", ""))
            verdict = "met" if figure <= most else "NOT met"
            lines.append(f"  {what}: {figure:,.2f} (goal at most {most:g}): {verdict}")
    if lines:
        print("\ntargets:")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
