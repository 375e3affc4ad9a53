"""The workflow's timeouts, retries and budget (``overlord.workflow``), and the margins a Run task keeps."""

from __future__ import annotations

from pydantic import Field, model_validator

from asyncagents.formation_base import StrictModel

# How much longer than its Task's timeout the run function may go on (then Lambda stops it).
TASK_FUNCTION_MARGIN_SECONDS = 3
# How much longer than the workflow (and than one attempt of a step) a Run task may last: the checkpoint
# writes after an attempt and the answer need a moment. A Run task lasts at most MAX_RUN_SECONDS.
RUN_MARGIN_SECONDS = 5
MAX_RUN_SECONDS = 900 - TASK_FUNCTION_MARGIN_SECONDS


class Timeouts(StrictModel):
    task_timeout: int = Field(
        300,
        ge=1,
        le=892,
        description="Seconds per attempt of a step; a Run task lasts at most 897 s (Lambda stops at 900), and "
        "an attempt starts only when it can finish in the run, with a few seconds to spare.",
    )
    workflow_timeout: int = Field(3600, ge=1, le=365 * 86_400)

    @model_validator(mode="after")
    def _task_fits_in_workflow(self) -> Timeouts:
        if self.task_timeout > self.workflow_timeout:
            raise ValueError("task_timeout must not exceed workflow_timeout")
        return self


class Retry(StrictModel):
    max_attempts: int = Field(3, ge=1, le=10, description="Total attempts of a step, the first one included.")
    initial_delay: float = Field(1.0, gt=0, le=3600)
    max_delay: float = Field(60.0, gt=0, le=3600)
    backoff_factor: float = Field(2.0, ge=1.0, le=10.0)

    @model_validator(mode="after")
    def _delays_ordered(self) -> Retry:
        if self.max_delay < self.initial_delay:
            raise ValueError("max_delay must be at least initial_delay")
        return self


class Budget(StrictModel):
    """Per-request limits; a request that reaches one fails with ``error.type: "budget_exceeded"``."""

    max_model_calls: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1, description="Input and output tokens, all calls together.")
    max_wall_seconds: float | None = Field(None, gt=0, description="From acceptance to the last model call.")
