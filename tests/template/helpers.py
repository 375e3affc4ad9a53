"""Helpers of the template tier: the SAM template, the ASL file and the SAM CLI.

Nothing here reaches AWS: the region is fixed and the instance metadata service is disabled.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
ASL_PATH = REPO_ROOT / "statemachines" / "request_workflow.asl.json"
FORMATION_PATH = REPO_ROOT / "formation.yaml"
SAM_BIN = REPO_ROOT / ".venv-sam" / "bin" / "sam"
VENV_BIN = REPO_ROOT / ".venv" / "bin"

# Every function of the template (the transform test checks the template has exactly these).
FUNCTIONS = [
    "ApiFunction",
    "RunFunction",
    "MarkFailedFunction",
    "ClarifyFunction",
    "NotifyFunction",
    "WebhookSenderFunction",
    "ReconcileFunction",
    "SweeperFunction",
    "RunScheduleFunction",
]

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")

# The environment of every SAM / cfn-lint subprocess: a region, no metadata service, no telemetry.
OFFLINE_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "SAM_CLI_TELEMETRY": "0",
}


def offline_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OFFLINE_ENV)
    env.update(extra)
    return env


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short-form tags (!Ref, !GetAtt, !Sub...) into their long form."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)


def asl_text() -> str:
    return ASL_PATH.read_text(encoding="utf-8")


def asl_placeholders() -> set[str]:
    return set(PLACEHOLDER.findall(asl_text()))


def sam_available_or_skip() -> Path:
    """The SAM CLI of .venv-sam; a missing one skips locally but fails in CI (CI must run these)."""
    if SAM_BIN.exists():
        return SAM_BIN
    if os.environ.get("CI"):
        pytest.fail(f"{SAM_BIN} is missing in CI: run `make sam-venv` before the tests")
    pytest.skip(f"aws-sam-cli not installed at {SAM_BIN} (run `make sam-venv`); required when CI is set")
    raise AssertionError  # unreachable


def run(
    cmd: list[str], *, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env if env is not None else offline_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def make_available() -> str:
    found = shutil.which("make")
    if not found:
        pytest.fail("`make` is required (sam build uses BuildMethod: makefile)")
    return found
