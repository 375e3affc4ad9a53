"""A fresh Python interpreter for the tests that measure what importing our code does (nothing imported yet)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fresh_interpreter(script: str) -> dict:
    """Run ``script`` in a new interpreter importing this tree's package (its first imports are real, the
    coldstart module's included); the JSON it prints last."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "asyncagents")}
    answer = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=environment,
    )
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout.strip().splitlines()[-1])
