from __future__ import annotations

from typing import Any

import pytest

from .helpers import load_template


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()
