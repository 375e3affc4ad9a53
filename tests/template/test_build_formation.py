"""`python -m asyncagents.build_formation`: the layer build's formation validator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asyncagents.config import FormationConfig, load_formation

pytestmark = pytest.mark.template


def _run(source: Path, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncagents.build_formation", str(source), str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rejects_unknown_key_naming_it(tmp_path: Path) -> None:
    source = tmp_path / "formation.yaml"
    source.write_text("overlord:\n  workflow:\n    retyr:\n      max_attempts: 3\n", encoding="utf-8")
    target = tmp_path / "out" / "formation.json"
    result = _run(source, target)
    assert result.returncode == 2, result
    assert "retyr" in result.stderr, result.stderr
    assert not target.exists()


def test_rejects_invalid_value(tmp_path: Path) -> None:
    source = tmp_path / "formation.yaml"
    source.write_text("overlord:\n  workflow:\n    timeouts:\n      task_timeout: 5000\n", encoding="utf-8")
    result = _run(source, tmp_path / "formation.json")
    assert result.returncode == 2
    assert "task_timeout" in result.stderr, result.stderr


def test_missing_file_and_bad_usage_exit_2(tmp_path: Path) -> None:
    assert _run(tmp_path / "absent.yaml", tmp_path / "formation.json").returncode == 2
    usage = subprocess.run(
        [sys.executable, "-m", "asyncagents.build_formation"], capture_output=True, text=True, check=False
    )
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_writes_json_that_loads_back_identically(tmp_path: Path) -> None:
    source = tmp_path / "formation.yaml"
    source.write_text(
        "formation_id: demo-1\nasync:\n  mode: async\noverlord:\n  workflow:\n    max_concurrency: 4\n",
        encoding="utf-8",
    )
    target = tmp_path / "out" / "formation.json"
    result = _run(source, target)
    assert result.returncode == 0, result.stderr
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["async"]["mode"] == "async"  # by alias, JSON-mode values
    assert "async_" not in document
    shipped = load_formation(target)
    assert shipped == load_formation(source)
    assert shipped.overlord.workflow.max_concurrency == 4
    assert shipped != FormationConfig()
