"""The payloads the state machine passes to the workflow's Lambda tasks."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field


class RequestTask(BaseModel):
    model_config = ConfigDict(extra="ignore")
    request_key: str = Field(pattern=r"^REQ#[0-9a-f]{32}$")
    # The execution's name is the record's generation: workers write only to the record they belong to.
    execution_name: str = Field(min_length=1, max_length=80)


class StepTask(RequestTask):
    index: int = Field(ge=0)
    title: str


class Failure(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    error: str = Field("States.Runtime", alias="Error")
    cause: str = Field("", alias="Cause")


class FailureTask(RequestTask):
    error: Failure = Field(default_factory=Failure)


class ExecutionEnded(BaseModel):
    """The detail of an EventBridge "Step Functions Execution Status Change" event we reconcile."""

    model_config = ConfigDict(extra="ignore")
    name: str
    status: str
    input: str | None = None
    error: str | None = None
    cause: str | None = None

    def request_key(self) -> str | None:
        try:
            return RequestTask.model_validate(
                {**json.loads(self.input or "{}"), "execution_name": self.name}
            ).request_key
        except (ValueError, TypeError):
            return None
