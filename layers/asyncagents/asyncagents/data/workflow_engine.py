"""Step Functions access: start and stop the request workflow's executions, and end the waits on task tokens."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from asyncagents.data.dynamo import error_code
from asyncagents.domain.ports import ExecutionState


class StepFunctionsEngine:
    """Starts executions under names derived from the request, so a retried accept cannot start two.
    ``client`` gives the boto3 Step Functions client when first needed (reads never need it)."""

    def __init__(self, client: Callable[[], Any], state_machine_arn: str) -> None:
        self._client_of = client
        self._state_machine_arn = state_machine_arn

    @property
    def _client(self) -> Any:
        return self._client_of()

    def execution_arn(self, execution_name: str) -> str:
        prefix, _, machine = self._state_machine_arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{execution_name}"

    def start(self, execution_name: str, payload: dict[str, Any]) -> None:
        """Start the execution; an execution that already exists under this name counts as started."""
        try:
            self._client.start_execution(
                stateMachineArn=self._state_machine_arn,
                name=execution_name,
                input=json.dumps(payload, separators=(",", ":")),
            )
        except ClientError as error:
            if error_code(error) != "ExecutionAlreadyExists":
                raise

    def stop(self, execution_name: str, *, cause: str) -> None:
        """Ask Step Functions to stop the execution; one that has already ended is left alone."""
        try:
            self._client.stop_execution(executionArn=self.execution_arn(execution_name), error="Cancelled", cause=cause)
        except ClientError as error:
            if error_code(error) not in {"ExecutionDoesNotExist", "ExecutionNotFound"}:
                raise

    def describe(self, execution_name: str) -> ExecutionState | None:
        """The execution's status (and its error, once failed); ``None`` when no execution has the name."""
        try:
            found = self._client.describe_execution(executionArn=self.execution_arn(execution_name))
        except ClientError as error:
            if error_code(error) in {"ExecutionDoesNotExist", "ExecutionNotFound"}:
                return None
            raise
        return ExecutionState(
            status=str(found["status"]), error=str(found.get("error") or ""), cause=str(found.get("cause") or "")
        )

    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        """End a wait on a task token with ``output``. ``False`` when the wait is already over (it timed
        out, or the execution ended)."""
        try:
            self._client.send_task_success(taskToken=task_token, output=json.dumps(output, separators=(",", ":")))
        except ClientError as error:
            if error_code(error) in _CLOSED_TASK_ERRORS:
                return False
            raise
        return True

    def fail_task(self, task_token: str, *, error: str, cause: str) -> bool:
        """End a wait on a task token with an error. ``False`` when the wait is already over."""
        try:
            self._client.send_task_failure(taskToken=task_token, error=error, cause=cause)
        except ClientError as failure:
            if error_code(failure) in _CLOSED_TASK_ERRORS:
                return False
            raise
        return True


_CLOSED_TASK_ERRORS = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
