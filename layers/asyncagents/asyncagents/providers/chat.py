"""Agent steps on top of any chat model: plan as validated JSON, run each step, compose the answer.

A concrete provider supplies one primitive, ``complete(system, prompt) -> Completion``, and maps its own
errors to ``TransientProviderError`` (throttling, 5xx, timeouts: the workflow retries) or
``PermanentProviderError`` (bad request, auth: the request fails at once).
"""

from __future__ import annotations

import json
import re
from typing import Protocol

from pydantic import BaseModel, Field, ValidationError

from asyncagents.models import PlannedStep, Usage
from asyncagents.providers.base import Answer, Plan, StepContext, StepOutput

PLAN_SYSTEM = (
    "You plan work for an AI agent. Split the user's request into at most {max_steps} steps that can each "
    "be done with one model call. Answer with JSON only, no prose: "
    '{{"steps": [{{"title": "<short title>", "instruction": "<what to do>"}}]}}. '
    "Use a single step when the request is simple."
)
STEP_SYSTEM = "You are an AI agent carrying out one step of a larger task. Do only this step, thoroughly."
FINISH_SYSTEM = (
    "You are an AI agent. Compose the final answer to the user's request from the results of the steps "
    "below. Answer the user directly; do not mention the steps."
)
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class Completion(BaseModel):
    text: str
    usage: Usage = Field(default_factory=Usage)


class ChatModel(Protocol):
    def complete(self, system: str, prompt: str) -> Completion: ...


class _PlannedSteps(BaseModel):
    steps: list[PlannedStep] = Field(min_length=1)


def parse_plan(text: str, *, max_steps: int, message: str) -> list[PlannedStep]:
    """The steps in a model's planning answer; one step (the whole request) when it is not valid JSON of
    the expected shape. More steps than allowed are merged into the last one."""
    match = _JSON_OBJECT.search(text)
    try:
        steps = _PlannedSteps.model_validate(json.loads(match.group(0) if match else text)).steps
    except (ValueError, ValidationError):
        return [PlannedStep(title="Answer the request", instruction=message)]
    steps = [
        PlannedStep(title=s.title.strip()[:120] or f"Step {i + 1}", instruction=s.instruction.strip() or message)
        for i, s in enumerate(steps)
    ]
    if len(steps) > max_steps:
        merged = "\n".join(s.instruction for s in steps[max_steps - 1 :])
        steps = [*steps[: max_steps - 1], PlannedStep(title=steps[max_steps - 1].title, instruction=merged)]
    return steps


class ChatAgentProvider:
    """Plan, step and finish prompts over a ``ChatModel``."""

    def __init__(self, name: str, model: ChatModel) -> None:
        self.name = name
        self._model = model

    def plan(self, message: str, *, max_steps: int) -> Plan:
        completion = self._model.complete(PLAN_SYSTEM.format(max_steps=max_steps), message)
        return Plan(steps=parse_plan(completion.text, max_steps=max_steps, message=message), usage=completion.usage)

    def run_step(self, step: PlannedStep, context: StepContext) -> StepOutput:
        earlier = "\n\n".join(
            f"Result of step {i + 1}:\n{text}" for i, text in enumerate(context.previous_outputs) if text
        )
        prompt = (
            f"The user's request:\n{context.message}\n\n"
            + (f"{earlier}\n\n" if earlier else "")
            + f"Step {context.index + 1} of {context.total}: {step.title}\n{step.instruction}"
        )
        completion = self._model.complete(STEP_SYSTEM, prompt)
        return StepOutput(text=completion.text, usage=completion.usage)

    def finish(self, message: str, outputs: list[StepOutput]) -> Answer:
        if len(outputs) == 1:  # one step: its result is the answer; no second call
            return Answer(text=outputs[0].text)
        results = "\n\n".join(f"Result of step {i + 1}:\n{o.text}" for i, o in enumerate(outputs))
        completion = self._model.complete(FINISH_SYSTEM, f"The user's request:\n{message}\n\n{results}")
        return Answer(text=completion.text, usage=completion.usage)
