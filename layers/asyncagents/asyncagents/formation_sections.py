"""The formation's triggers and schedules, validated entry by entry, and validation errors as people read
them. Imported only for a formation that has triggers or schedules (their models cost a cold start)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from asyncagents.config import describe
from asyncagents.schedule_definitions import SCHEDULE_NAME_PATTERN, ScheduleDefinition, logical_id
from asyncagents.trigger_definitions import TriggerDefinition


def trigger_definitions(value: dict[str, Any]) -> dict[str, Any]:
    definitions = _each(value, TriggerDefinition, "triggers")
    for name, definition in definitions.items():
        if definition.name != name:
            raise ValueError(f"triggers.{name}: holds the definition of {definition.name!r}")
    return definitions


def schedule_definitions(value: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, str] = {}
    for name in value:
        if not re.match(SCHEDULE_NAME_PATTERN, str(name)):
            raise ValueError(f"schedules.{name}: a name is 1-48 letters, digits, '-' or '_'")
        # daily-report and daily_report would be one resource of the built template: refuse the second
        other = resources.setdefault(logical_id(name).lower(), name)
        if other != name:
            raise ValueError(f"schedules.{name}: too close to {other!r} (they would be one schedule)")
    return _each(value, ScheduleDefinition, "schedules")


def _each(value: dict[str, Any], model: type[BaseModel], section: str) -> dict[str, Any]:
    """Every entry validated by ``model``; the first problem named by its full path."""
    validated: dict[str, Any] = {}
    for name, entry in value.items():
        try:
            validated[name] = entry if isinstance(entry, model) else model.model_validate(entry)
        except ValidationError as error:
            raise ValueError(describe(error, prefix=f"{section}.{name}")) from None
    return validated
