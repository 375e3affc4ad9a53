"""The formation's schedules as CloudFormation resources: ``make build`` adds them to the built template, so
they exist after a deploy with no other step, change with the formation, and go when removed from it. The
local stack creates the same schedules from the same resources."""

from __future__ import annotations

import json
from typing import Any

from asyncagents.config import FormationConfig
from asyncagents.domain.schedules.jobs import FORMATION_PREFIX, schedule_input
from asyncagents.schedule_definitions import logical_id

# As the schedules created over the API (``data.scheduler``): an hour of retries, then the dead-letter queue.
RETRY_POLICY = {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 20}


def schedule_resources(formation: FormationConfig) -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = {}
    for name, definition in sorted(formation.schedules.items()):
        timing = definition.timing()
        window: dict[str, Any] = {"Mode": "OFF"}
        if definition.flexible_window_minutes:
            window = {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": definition.flexible_window_minutes}
        resources[logical_id(name)] = {
            "Type": "AWS::Scheduler::Schedule",
            "Properties": {
                "Name": FORMATION_PREFIX + name,
                "GroupName": {"Ref": "ScheduleGroup"},
                "Description": (definition.title or f"formation schedule {name}")[:512],
                "ScheduleExpression": timing.expression,
                "ScheduleExpressionTimezone": definition.timezone,
                "FlexibleTimeWindow": window,
                "State": "ENABLED" if definition.enabled else "DISABLED",
                "Target": {
                    "Arn": {"Fn::GetAtt": ["RunScheduleFunction", "Arn"]},
                    "RoleArn": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
                    "Input": json.dumps(schedule_input(FORMATION_PREFIX + name)),
                    "RetryPolicy": RETRY_POLICY,
                    "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}},
                },
            },
        }
    return resources
