"""Task adapters: the payloads the state machine and EventBridge pass to the workflow's Lambda tasks, validated
(the table's stream is read by ``streams``)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, model_validator

from asyncagents.domain.records import bare_request_key
from asyncagents.model_base import LazyModel


class RequestTask(LazyModel):
    model_config = ConfigDict(extra="ignore")
    # Executions started by release 0.1 pass "REQ#<key>": accepted, so they finish.
    request_key: Annotated[str, BeforeValidator(bare_request_key)] = Field(pattern=r"^[0-9a-f]{32}$")
    # The execution's name is the record's generation: workers write only to the record they belong to.
    execution_name: str = Field(min_length=1, max_length=80)


class QuestionTask(RequestTask):
    """AwaitAnswer (``wait``, with the task token) and AnswerTimedOut (``timed_out``): about every open
    question of the request."""

    action: Literal["wait", "timed_out"]
    task_token: str | None = Field(None, min_length=1, max_length=2048)
    # What ended the wait, for ``timed_out``: the wait's own timeout (States.Timeout), or QuestionTimedOut.
    ended_by: str | None = Field(None, max_length=256)

    @model_validator(mode="after")
    def _wait_has_token(self) -> QuestionTask:
        if self.action == "wait" and not self.task_token:
            raise ValueError("a wait needs the task token")
        return self


class Failure(LazyModel):
    model_config = ConfigDict(populate_by_name=True)
    error: str = Field("States.Runtime", alias="Error")
    cause: str = Field("", alias="Cause")


class FailureTask(RequestTask):
    error: Failure = Field(default_factory=Failure)


class ExecutionEnded(LazyModel):
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


class ScheduledSlot(LazyModel):
    """What a job's EventBridge Scheduler schedule sends: the job, and the time the slot was due (Scheduler
    fills ``<aws.scheduler.scheduled-time>`` in)."""

    model_config = ConfigDict(extra="ignore")
    job_id: str = Field(pattern=r"^(job_[0-9a-f]{24}|formation-[A-Za-z0-9_-]{1,48})$")
    scheduled_time: str = Field(min_length=10, max_length=40)
