"""The layer's bytecode step: which Python compiles it, and what happens without one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from asyncagents import build_bytecode


def test_an_interpreter_of_another_version_is_not_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given only this test's own Python, which is not the runtime's 3.12 (and a path that does not exist)
    if sys.version_info[:2] == build_bytecode.LAMBDA_PYTHON_VERSION:
        pytest.skip("this Python is the runtime's version")
    monkeypatch.setattr(build_bytecode, "_candidates", lambda: ["/nonexistent/python3.12", sys.executable])
    # Then no interpreter is found: bytecode of 3.11 would be ignored by the runtime and only weigh on the layer
    assert build_bytecode.lambda_python() is None


def test_without_the_runtime_python_the_layer_ships_sources_and_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "module.py").write_text("VALUE = 1\n")
    monkeypatch.setattr(build_bytecode, "_candidates", lambda: [])
    assert build_bytecode.main([str(tmp_path)]) == 0
    assert "LAMBDA_PYTHON" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.pyc"))


def test_the_interpreter_named_by_lambda_python_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDA_PYTHON", "/opt/custom/python3.12")
    assert build_bytecode._candidates()[0] == "/opt/custom/python3.12"


def test_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    assert build_bytecode.main([str(tmp_path / "missing")]) == 2
