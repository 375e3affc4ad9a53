"""The architecture as tests: imports point one way, and no module or function outgrows its room."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "asyncagents" / "asyncagents"
MAX_MODULE_LINES = 350

# What each room may not import (prefixes of module names).
FORBIDDEN = {
    "domain": (
        "boto3",
        "botocore",
        "httpx",
        "aws_lambda_powertools",
        "asyncagents.data",
        "asyncagents.api",
        "asyncagents.runtime",
        "asyncagents.tasks",
        "asyncagents.providers",
        "asyncagents.local",
    ),
    "data": (
        "asyncagents.api",
        "asyncagents.runtime",
        "asyncagents.tasks",
        "asyncagents.providers",
        "asyncagents.local",
    ),
    "providers": (
        "asyncagents.data",
        "asyncagents.api",
        "asyncagents.runtime",
        "asyncagents.tasks",
        "asyncagents.local",
    ),
    "api": ("asyncagents.data", "asyncagents.providers", "asyncagents.local", "boto3", "botocore"),
    # The SDK talks HTTP only: it never reaches into the server's rooms (webhook checks come through
    # asyncagents.webhooks, the receivers' own surface).
    "client": (
        "boto3",
        "botocore",
        "aws_lambda_powertools",
        "asyncagents.domain",
        "asyncagents.data",
        "asyncagents.api",
        "asyncagents.runtime",
        "asyncagents.tasks",
        "asyncagents.providers",
        "asyncagents.local",
        "asyncagents.cli",
    ),
}


def _modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _room(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_one_way(path: Path) -> None:
    # Given a module of a room with rules
    forbidden = FORBIDDEN.get(_room(path), ())
    # When its imports are read (lazy ones inside functions included)
    crossings = sorted(name for name in _imports(path) if any(name == f or name.startswith(f + ".") for f in forbidden))
    # Then none reaches into a room it must not know
    assert crossings == [], f"{path.relative_to(PACKAGE)} imports {crossings}"


def test_no_module_outgrows_its_room() -> None:
    # The local stack is development tooling and may be long; everything that ships stays readable.
    long = {
        str(path.relative_to(PACKAGE)): lines
        for path in _modules()
        if _room(path) != "local" and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_the_rules_see_a_crossing(tmp_path: Path) -> None:
    # The check itself: a domain module importing the data layer is caught.
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from asyncagents.data.dynamo import serialize\n")
    assert "asyncagents.data.dynamo" in _imports(module)
