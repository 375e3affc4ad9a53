"""cfn-lint and `sam validate --lint` on template.yaml."""

from __future__ import annotations

import pytest

from .helpers import REPO_ROOT, TEMPLATE_PATH, VENV_BIN, run, sam_available_or_skip

pytestmark = pytest.mark.template


def test_cfn_lint_reports_no_errors() -> None:
    cfn_lint = VENV_BIN / "cfn-lint"
    assert cfn_lint.exists(), f"{cfn_lint} missing: run `make venv`"
    result = run([str(cfn_lint), "--format", "parseable", str(TEMPLATE_PATH)], timeout=180)
    # cfn-lint exit codes are a bit field: 2 = error, 4 = warning, 8 = informational; 1 = crash.
    problems = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"cfn-lint exit {result.returncode}:\n{problems}"


def test_sam_validate_lint() -> None:
    sam = sam_available_or_skip()
    result = run([str(sam), "validate", "--lint", "--template-file", str(TEMPLATE_PATH)], cwd=REPO_ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"sam validate --lint failed ({result.returncode}):\n{output}"
    assert "is a valid SAM Template" in output, output
