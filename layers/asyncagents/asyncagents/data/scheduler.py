"""EventBridge Scheduler: the schedules of scheduled jobs, in the stack's group, aimed at the schedule function.

Every schedule retries a failed delivery for an hour and then dead-letters it (the stack alarms on that queue):
a slot is never skipped silently. Creates carry a client token, so a retried create is the same create.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from asyncagents.data.dynamo import error_code
from asyncagents.domain.errors import InvalidData, NotFound

RETRY_POLICY = {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 20}


class EventBridgeSchedules:
    """Implements ``ScheduleEngine``. ``client`` is a boto3 ``scheduler`` client."""

    def __init__(self, client: Any, *, group: str, role_arn: str, target_arn: str, dead_letter_arn: str) -> None:
        self._client = client
        self._group = group
        self._role_arn = role_arn
        self._target_arn = target_arn
        self._dead_letter_arn = dead_letter_arn

    def put(
        self,
        name: str,
        *,
        expression: str,
        timezone: str,
        payload: dict[str, Any],
        enabled: bool,
        flexible_window_minutes: int,
        create: bool,
    ) -> None:
        window: dict[str, Any] = {"Mode": "OFF"}
        if flexible_window_minutes:
            window = {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": flexible_window_minutes}
        arguments: dict[str, Any] = {
            "Name": name,
            "GroupName": self._group,
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": timezone,
            "FlexibleTimeWindow": window,
            "State": "ENABLED" if enabled else "DISABLED",
            "Target": {
                "Arn": self._target_arn,
                "RoleArn": self._role_arn,
                "Input": json.dumps(payload),
                "RetryPolicy": RETRY_POLICY,
                "DeadLetterConfig": {"Arn": self._dead_letter_arn},
            },
        }
        try:
            if create:
                self._client.create_schedule(**arguments, ClientToken=name)
            else:
                self._client.update_schedule(**arguments)
        except ClientError as error:
            code = error_code(error)
            if code == "ConflictException" and create:
                return  # created by an earlier try of this same create (the name is the job's own)
            if code == "ResourceNotFoundException":
                raise NotFound(f"schedule {name} not found") from None
            if code == "ValidationException":
                raise InvalidData(
                    f"schedule: EventBridge Scheduler refused it ({error})", details={"field": "schedule"}
                ) from None
            raise

    def delete(self, name: str) -> None:
        try:
            self._client.delete_schedule(Name=name, GroupName=self._group)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
