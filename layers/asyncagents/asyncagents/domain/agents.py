"""The agent contract: what the workflow asks a provider for, and what it gets back.

A provider plans a request into steps, runs one step, and composes the final answer. Each call
reports its token usage. Failures are ``TransientProviderError`` (throttling, 5xx, timeouts: the
workflow retries them with backoff) or ``PermanentProviderError`` (bad request, auth: the request
fails at once with ``retryable: false``).

When ``may_ask`` is true, ``plan`` and ``run_step`` may return a question for the user instead of their
work (``clarification_question``); the workflow waits for the answer and calls them again with it in
``clarifications``.
"""

from __future__ import annotations

from pydantic import Field

from asyncagents.domain.plans import PlannedStep
from asyncagents.domain.records import Usage
from asyncagents.model_base import LazyModel


class QuestionAndAnswer(LazyModel):
    """A question put to the user and the answer (``None``: the user did not answer in time)."""

    question: str
    answer: str | None = None
    step_index: int | None = None  # the step that asked; None: the planner (about the whole request)


class Plan(LazyModel):
    steps: list[PlannedStep] = Field(default_factory=list)
    clarification_question: str | None = None
    usage: Usage = Field(default_factory=Usage)


class StepContext(LazyModel):
    """What a step sees: the request, its position in the plan, which attempt this is (1-based), the
    outputs of the steps it depends on (by index), and the questions asked about it so far."""

    request_id: str
    message: str
    index: int
    total: int
    attempt: int = 1
    previous_outputs: dict[int, str] = Field(default_factory=dict)
    clarifications: list[QuestionAndAnswer] = Field(default_factory=list)
    may_ask: bool = False
    # When the attempt's function is stopped (epoch seconds): a provider never waits past it.
    deadline: float | None = None

    def seconds_left(self, now: float) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - now)


class StepOutput(LazyModel):
    text: str = ""
    clarification_question: str | None = None
    usage: Usage = Field(default_factory=Usage)


class Artifact(LazyModel):
    """A file a request produced (a report, a table...), stored in the artifacts bucket."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    content: str
    content_type: str = "text/markdown"


class Answer(LazyModel):
    text: str
    artifacts: list[Artifact] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
