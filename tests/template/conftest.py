from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

from .helpers import load_template


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


class _StaticPolicyLoader(ManagedPolicyLoader):
    """The managed-policy map without IAM: only the policies SAM itself attaches."""

    def __init__(self) -> None:
        super().__init__(iam_client=None)  # type: ignore[arg-type]
        self._policy_map = {
            "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
        }

    def load(self) -> dict[str, str]:
        assert self._policy_map is not None
        return self._policy_map


def _with_s3_locations(sam_template: dict[str, Any]) -> dict[str, Any]:
    """What `sam package` does to local paths: samtranslator only accepts S3 locations."""
    result = copy.deepcopy(sam_template)
    function_globals = result.get("Globals", {}).get("Function", {})
    if isinstance(function_globals.get("CodeUri"), str):
        function_globals["CodeUri"] = "s3://asyncagents-test-artifacts/functions/CodeUri"
    for name, resource in result["Resources"].items():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://asyncagents-test-artifacts/{name}/{key}"
    return result


@pytest.fixture(scope="module")
def cfn(template: dict[str, Any], monkeypatch_module: pytest.MonkeyPatch) -> dict[str, Any]:
    return transform(_with_s3_locations(template), {}, _StaticPolicyLoader())


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("AWS_REGION", "us-east-1")
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield patch
