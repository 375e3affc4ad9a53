"""Schemathesis against the local stack: the generated OpenAPI document, every check, the stateful phase over
the document's links, each route with the key its security scheme names (``schemathesis.toml`` beside this).

    make fuzz                                   # 100 examples per operation
    make fuzz FUZZ_ARGS="--max-examples 500"    # or any other schemathesis run option
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.stack_fixture import KEYS, start_stack

CONFIG = Path(__file__).resolve().with_name("schemathesis.toml")


def fuzz(arguments: list[str], *, capture: bool = False) -> tuple[int, str]:
    """Start a local stack, run schemathesis against it, stop the stack: its exit status (and output)."""
    schemathesis = Path(sys.executable).with_name("st")
    with tempfile.TemporaryDirectory() as scratch:
        # A key's limits have their own tests (tests/e2e/test_limits.py); here they would answer valid bodies 429.
        stack = start_stack(Path(scratch), {"limits": {"requests_per_second": 0, "max_active_requests": 0}})
        try:
            command = [
                str(schemathesis),
                "--config-file",
                str(CONFIG),
                "run",
                f"{stack.url}/v1/openapi.json",
                "--url",
                stack.url,
                "--checks",
                "all",
                *arguments,
            ]
            environment = {
                **os.environ,
                "ASYNCAGENTS_CLIENT_KEY": KEYS.client_key,
                "ASYNCAGENTS_ADMIN_KEY": KEYS.admin_key,
                "NO_COLOR": "1",
            }
            done = subprocess.run(command, env=environment, capture_output=capture, text=True, check=False)
        finally:
            stack.stop()
    output = (done.stdout or "") + (done.stderr or "")
    # A call some function's IAM policy would refuse on AWS fails the run as a failed check would.
    refused = sorted({reason for _, reason in stack.permissions.denials})
    if refused:
        print("AccessDenied:", *refused, sep="\n", file=sys.stderr)
        return 1, output + "\nAccessDenied:\n" + "\n".join(refused)
    return done.returncode, output


if __name__ == "__main__":
    status, _ = fuzz(sys.argv[1:] or ["--max-examples", "100"])
    sys.exit(status)
