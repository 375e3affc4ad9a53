"""Agent steps on top of any chat model: plan as validated JSON, run each step, compose the answer.

A concrete provider supplies one primitive, ``complete(system, prompt) -> Completion``, and maps its own
errors to ``TransientProviderError`` (throttling, 5xx, timeouts: the workflow retries) or
``PermanentProviderError`` (bad request, auth: the request fails at once).
"""

from __future__ import annotations

import json
import re
import time
from typing import Protocol

from pydantic import ConfigDict, Field, ValidationError

from asyncagents.domain.agents import Answer, Plan, QuestionAndAnswer, StepContext, StepOutput
from asyncagents.domain.records import PlannedStep, Usage
from asyncagents.model_base import LazyModel

PLAN_SYSTEM = (
    "You plan work for an AI agent. Split the user's request into at most {max_steps} steps that can each "
    "be done with one model call. Answer with JSON only, no prose: "
    '{{"steps": [{{"title": "<short title>", "instruction": "<what to do>", "depends_on": [<numbers>]}}]}}. '
    "depends_on lists the numbers (1-based) of earlier steps whose results the step needs; use [] for a step "
    "that needs none, so that independent steps can run at the same time. "
    "Use a single step when the request is simple."
)
ASK_OPTION = (
    " If the request cannot be done well without information only the user can give, answer instead with "
    'JSON only: {"clarification_question": "<one short question>"}.'
)
STEP_SYSTEM = "You are an AI agent carrying out one step of a larger task. Do only this step, thoroughly."
FINISH_SYSTEM = (
    "You are an AI agent. Compose the final answer to the user's request from the results of the steps "
    "below. Answer the user directly; do not mention the steps."
)
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
_QUESTION_CHARS = 2000


class Completion(LazyModel):
    text: str
    usage: Usage = Field(default_factory=Usage)


class ChatModel(Protocol):
    def complete(self, system: str, prompt: str, *, timeout: float | None = None) -> Completion: ...


class _ModelStep(LazyModel):
    title: str
    instruction: str
    depends_on: list[int] | None = None  # step numbers, 1-based; absent: every earlier step


class _PlannedSteps(LazyModel):
    steps: list[_ModelStep] = Field(min_length=1)


class _Question(LazyModel):
    model_config = ConfigDict(extra="forbid")
    clarification_question: str = Field(min_length=1)


def parse_question(text: str) -> str | None:
    """The question in an answer that is exactly ``{"clarification_question": "..."}``, else ``None``."""
    stripped = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    try:
        question = _Question.model_validate(json.loads(stripped)).clarification_question.strip()
    except (ValueError, ValidationError):
        return None
    return question[:_QUESTION_CHARS] or None


def parse_plan(text: str, *, max_steps: int, message: str) -> list[PlannedStep]:
    """The steps in a model's planning answer; one step (the whole request) when it is not valid JSON of
    the expected shape. More steps than allowed are merged into the last one. Dependencies become 0-based
    indexes of earlier steps; any other reference is dropped."""
    match = _JSON_OBJECT.search(text)
    try:
        raw = _PlannedSteps.model_validate(json.loads(match.group(0) if match else text)).steps
    except (ValueError, ValidationError):
        return [PlannedStep(title="Answer the request", instruction=message)]
    if len(raw) > max_steps:
        tail = raw[max_steps - 1 :]
        merged_deps = sorted({d for s in tail for d in (s.depends_on or [])} - set(range(max_steps, len(raw) + 1)))
        merged = _ModelStep(
            title=tail[0].title,
            instruction="\n".join(s.instruction for s in tail),
            depends_on=None if any(s.depends_on is None for s in tail) else merged_deps,
        )
        raw = [*raw[: max_steps - 1], merged]
    steps = []
    for i, s in enumerate(raw):
        depends = None if s.depends_on is None else sorted({d - 1 for d in s.depends_on if 1 <= d <= i})
        steps.append(
            PlannedStep(
                title=s.title.strip()[:120] or f"Step {i + 1}",
                instruction=s.instruction.strip() or message,
                depends_on=depends,
            )
        )
    return steps


def _answers(clarifications: list[QuestionAndAnswer]) -> str:
    lines = []
    for item in clarifications:
        answer = item.answer if item.answer is not None else "(no answer: make a reasonable assumption and say so)"
        lines.append(f"Q: {item.question}\nA: {answer}")
    return "The user was asked:\n" + "\n".join(lines) + "\n\n" if lines else ""


class ChatAgentProvider:
    """Plan, step and finish prompts over a ``ChatModel``."""

    def __init__(self, name: str, model: ChatModel) -> None:
        self.name = name
        self._model = model

    def plan(
        self,
        message: str,
        *,
        max_steps: int,
        clarifications: list[QuestionAndAnswer] | None = None,
        may_ask: bool = False,
    ) -> Plan:
        system = PLAN_SYSTEM.format(max_steps=max_steps) + (ASK_OPTION if may_ask else "")
        completion = self._model.complete(system, _answers(clarifications or []) + message)
        question = parse_question(completion.text) if may_ask else None
        if question:
            return Plan(clarification_question=question, usage=completion.usage)
        return Plan(steps=parse_plan(completion.text, max_steps=max_steps, message=message), usage=completion.usage)

    def run_step(self, step: PlannedStep, context: StepContext) -> StepOutput:
        earlier = "\n\n".join(
            f"Result of step {i + 1}:\n{text}" for i, text in sorted(context.previous_outputs.items()) if text
        )
        prompt = (
            f"The user's request:\n{context.message}\n\n"
            + (f"{earlier}\n\n" if earlier else "")
            + _answers(context.clarifications)
            + f"Step {context.index + 1} of {context.total}: {step.title}\n{step.instruction}"
        )
        system = STEP_SYSTEM + (ASK_OPTION if context.may_ask else "")
        # Never wait for the model past the moment Lambda stops this attempt.
        completion = self._model.complete(system, prompt, timeout=context.seconds_left(time.time()))
        question = parse_question(completion.text) if context.may_ask else None
        if question:
            return StepOutput(clarification_question=question, usage=completion.usage)
        return StepOutput(text=completion.text, usage=completion.usage)

    def finish(
        self, message: str, outputs: list[StepOutput], clarifications: list[QuestionAndAnswer] | None = None
    ) -> Answer:
        if len(outputs) == 1:  # one step: its result is the answer; no second call
            return Answer(text=outputs[0].text)
        results = "\n\n".join(f"Result of step {i + 1}:\n{o.text}" for i, o in enumerate(outputs))
        prompt = f"The user's request:\n{message}\n\n{_answers(clarifications or [])}{results}"
        completion = self._model.complete(FINISH_SYSTEM, prompt)
        return Answer(text=completion.text, usage=completion.usage)
