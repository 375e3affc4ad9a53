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


def test_an_interpreter_that_hangs_is_skipped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given a candidate that never answers (a hung shim)
    hanging = tmp_path / "python3.12"
    hanging.write_text("#!/bin/sh\nsleep 30\n")
    hanging.chmod(0o755)
    monkeypatch.setattr(build_bytecode, "_candidates", lambda: [str(hanging)])
    monkeypatch.setattr(build_bytecode, "PROBE_SECONDS", 0.5)
    # Then it is passed over, not a failed build
    assert build_bytecode.lambda_python() is None


def test_a_lambda_python_of_another_version_is_named_in_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if sys.version_info[:2] == build_bytecode.LAMBDA_PYTHON_VERSION:
        pytest.skip("this Python is the runtime's version")
    monkeypatch.setenv("LAMBDA_PYTHON", sys.executable)
    monkeypatch.setattr(build_bytecode, "_candidates", lambda: [sys.executable])
    assert build_bytecode.lambda_python() is None
    assert f"LAMBDA_PYTHON={sys.executable} is not a released CPython 3.12" in capsys.readouterr().err


def test_a_module_that_does_not_compile_fails_the_build_and_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "fine.py").write_text("VALUE = 1\n")
    (tmp_path / "broken.py").write_text("def (:\n")
    monkeypatch.setattr(build_bytecode, "lambda_python", lambda: sys.executable)
    assert build_bytecode.main([str(tmp_path)]) == 1
    assert "broken.py" in capsys.readouterr().err
