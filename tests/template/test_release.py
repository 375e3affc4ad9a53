"""One version, one license, everywhere a user or an operator sees them: the package's ``__version__`` is the
template's SemanticVersion, the CHANGELOG's newest release and what ``GET /v1/health`` answers (the layer ships the
package); the license is Apache-2.0 in the LICENSE file, pyproject and the listing."""

from __future__ import annotations

import re
import tomllib

import pytest

from asyncagents import __version__

from .helpers import REPO_ROOT, load_template

pytestmark = pytest.mark.template


def test_the_version_is_semantic_and_the_templates_listing_carries_it():
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    application = load_template()["Metadata"]["AWS::ServerlessRepo::Application"]
    assert str(application["SemanticVersion"]) == __version__


def test_the_changelogs_newest_release_is_this_version():
    releases = re.findall(
        r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", (REPO_ROOT / "CHANGELOG.md").read_text(), re.M
    )
    assert releases and releases[0] == __version__


def test_the_license_is_apache_2_everywhere():
    assert (
        "Apache License" in (REPO_ROOT / "LICENSE").read_text() and "Version 2.0" in (REPO_ROOT / "LICENSE").read_text()
    )
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and "version" in project["dynamic"]
    application = load_template()["Metadata"]["AWS::ServerlessRepo::Application"]
    assert application["SpdxLicenseId"] == "Apache-2.0"
    assert (REPO_ROOT / application["LicenseUrl"]).is_file() and (REPO_ROOT / application["ReadmeUrl"]).is_file()


def test_the_health_route_answers_the_version():
    import json

    from asyncagents.api.app import health

    assert json.loads(health().body) == {"status": "ok", "version": __version__}
