"""A trigger's message template: MUXI's ``${{ data.a.b.0 }}`` placeholders, filled from the event's data.

Only ``data.`` paths exist: a template reaches nothing else (no files, no environment, no code). Path
segments are keys of objects, or indexes of lists when numeric. A path the data lacks is an error naming
it (the API answers 422), never an empty string in the agent's task.
"""

from __future__ import annotations

import json
import re
from typing import Any

from asyncagents.domain.errors import InvalidData

# MUXI's placeholder (``${{ data.issue.title }}``; spaces inside the braces are optional), its path's segments
# never empty (``data.a..b`` is refused at build time) and, beyond MUXI, allowed hyphens (``pull-request``).
PLACEHOLDER = re.compile(r"\$\{\{\s*data\.([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)\s*\}\}")
# Anything that looks like an expression: what a definition may not contain besides ``data.`` paths.
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
# ``$.a.b.0`` (the paths of a definition's ``parse`` and ``when``).
JSON_PATH = re.compile(r"^\$((\.[A-Za-z0-9_-]+)+)$")


def data_fields(template: str) -> list[str]:
    """The data paths a template uses, in order of first use (``issue.title``, ``labels.0.name``)."""
    seen: dict[str, None] = {}
    for match in PLACEHOLDER.finditer(template):
        seen.setdefault(match.group(1), None)
    return list(seen)


def foreign_expressions(template: str) -> list[str]:
    """Expressions that are not ``data.`` paths (``${{ env.HOME }}``): a definition holding one is invalid."""
    return [match.group(0) for match in EXPRESSION.finditer(template) if not PLACEHOLDER.fullmatch(match.group(0))]


def path_segments(path: str) -> list[str]:
    """``$.issue.labels.0`` → ``["issue", "labels", "0"]``; ``ValueError`` for anything else."""
    match = JSON_PATH.match(path)
    if match is None:
        raise ValueError(f"{path!r} is not a path like $.issue.title (keys and list indexes, dot-separated)")
    return match.group(1)[1:].split(".")


def lookup(data: Any, segments: list[str], *, field: str, root: str = "data") -> Any:
    """The value at ``segments`` in ``data``; ``InvalidData`` naming ``field`` (what asked for it) and the
    first part of the path that is missing (``root.a.b``) when it is not there."""
    value = data
    for depth, segment in enumerate(segments):
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            missing = ".".join([root, *segments[: depth + 1]])
            raise InvalidData(
                f"{field}: the event's data has no {missing}", details={"field": field, "missing": missing}
            )
    return value


def as_text(value: Any) -> str:
    """How a value reads in a message: strings as they are, null as nothing (GitHub's empty issue body),
    everything else as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def render(template: str, data: Any) -> str:
    """The template with every placeholder replaced by its value in ``data``."""

    def fill(match: re.Match[str]) -> str:
        path = match.group(1)
        return as_text(lookup(data, path.split("."), field=f"data.{path}"))

    return PLACEHOLDER.sub(fill, template)
