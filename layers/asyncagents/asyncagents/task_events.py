"""The payloads the state machine passes to the workflow's Lambda tasks."""

from __future__ import annotations

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
