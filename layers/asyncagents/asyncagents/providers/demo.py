"""The offline demo provider: deterministic, no model, labelled as a demo in everything it writes.

It splits a message into steps by its clauses, simulates each step's work with a configurable
duration, and can be told to fail (transiently N times per step, or permanently) or to hang, so that
tests and the local stack exercise retries and timeouts. Clauses joined by "then" depend on the clause
before them; other clauses are independent (and may run at once). ``ask=plan``, ``ask=<step>`` or ``ask=plan+0+2``
makes the planner and/or those steps ask the user a question once; the answer shows in the step's output.

Faults and durations come from ``llm.demo`` in the formation, and a message may override them with a
directive such as ``[demo step_seconds=0.1 fail_transient=2]`` (removed from the text it plans).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from pydantic import ValidationError

from asyncagents.domain.agents import Answer, Artifact, Plan, QuestionAndAnswer, StepContext, StepOutput
from asyncagents.domain.errors import PermanentProviderError, TransientProviderError
from asyncagents.domain.records import PlannedStep, Usage
from asyncagents.formation_llm import DemoProviderSettings

LABEL = "[demo provider: no language model was called]"
TITLE_CHARS = 120  # titles travel through the state machine's payload: keep them short
# A model writes a step's instruction in a sentence or two, whatever context the message carries (the step gets the
# whole message besides): a clause longer than this is cut, as the plan is stored with the request.
INSTRUCTION_CHARS = 300

_DIRECTIVE = re.compile(r"\[demo(?P<body>(?:\s+[a-z_]+=[^\s\]]+)*)\s*\]", re.IGNORECASE)
_CLAUSE_SPLIT = re.compile(r"\s*([;,.!?]|\band then\b|\bthen\b)\s*", re.IGNORECASE)
_REPORT = re.compile(r"\breport\b", re.IGNORECASE)


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def split_directive(message: str, defaults: DemoProviderSettings) -> tuple[str, DemoProviderSettings]:
    """Strip a ``[demo key=value …]`` directive from ``message`` and apply it over ``defaults``."""
    message = re.sub(r"\s+", " ", message)  # the clause split is quadratic in long runs of whitespace
    match = _DIRECTIVE.search(message)
    if not match:
        return message.strip(), defaults
    overrides: dict[str, str] = {}
    for pair in match.group("body").split():
        key, _, value = pair.partition("=")
        overrides[key.lower()] = value
    try:
        settings = DemoProviderSettings.model_validate({**defaults.model_dump(), **overrides})
    except ValidationError as error:
        raise PermanentProviderError(f"invalid demo directive: {error.errors()[0]['msg']}") from None
    text = (message[: match.start()] + message[match.end() :]).strip()
    return text, settings


class DemoProvider:
    """See the module docstring. ``sleep`` is injectable so unit tests do not wait."""

    name = "demo"

    def __init__(
        self,
        settings: DemoProviderSettings,
        *,
        model: str = "demo",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._model = model
        self._sleep = sleep

    def plan(
        self,
        message: str,
        *,
        max_steps: int,
        clarifications: list[QuestionAndAnswer] | None = None,
        may_ask: bool = False,
    ) -> Plan:
        text, settings = split_directive(message, self._settings)
        if may_ask and settings.asks_in("plan") and not clarifications:
            question = "Demo question: what should the answer focus on?"
            return Plan(clarification_question=question, usage=Usage(input_tokens=_tokens(text), output_tokens=8))
        parts = _CLAUSE_SPLIT.split(text)  # clause, separator, clause, ...
        clauses: list[tuple[str, bool]] = []  # (clause, depends on the clause before)
        after_then = False
        for position, part in enumerate(parts):
            if position % 2:
                after_then = after_then or part.lower().endswith("then")
            elif part and part.strip():
                clauses.append((part, after_then and bool(clauses)))
                after_then = False
        if not clauses:
            clauses = [(text or "Answer the request", False)]
        if len(clauses) > max_steps:
            # Keep the bound: the last step takes every clause that did not fit (and waits for the others).
            tail = "; ".join(clause for clause, _ in clauses[max_steps - 1 :])
            clauses = [*clauses[: max_steps - 1], (tail, True)]
        steps = [
            PlannedStep(
                title=(clause[:1].upper() + clause[1:])[:TITLE_CHARS],
                instruction=clause[:INSTRUCTION_CHARS],
                depends_on=[index - 1] if after and index else [],
            )
            for index, (clause, after) in enumerate(clauses)
        ]
        return Plan(steps=steps, usage=Usage(input_tokens=_tokens(text), output_tokens=len(steps) * 4))

    def run_step(self, step: PlannedStep, context: StepContext) -> StepOutput:
        _, settings = split_directive(context.message, self._settings)
        if settings.fail_step is not None and settings.fail_step != context.index:
            settings = settings.model_copy(update={"fail_permanent": False, "fail_transient": 0, "hang_seconds": 0})
        if settings.fail_permanent:
            raise PermanentProviderError(f"demo provider configured to fail permanently (step {context.index + 1})")
        if context.attempt <= settings.fail_transient:
            raise TransientProviderError(
                f"demo provider transient failure {context.attempt} of {settings.fail_transient} "
                f"(step {context.index + 1})"
            )
        asked_before = any(c.step_index == context.index for c in context.clarifications)
        if context.may_ask and settings.asks_in(str(context.index)) and not asked_before:
            question = f"Demo question for step {context.index + 1}: which option should I use?"
            return StepOutput(clarification_question=question, usage=Usage(input_tokens=_tokens(step.instruction)))
        work = settings.hang_seconds if settings.hang_seconds > 0 else settings.step_seconds
        left = context.seconds_left(time.time())
        if left is not None and work > left:  # the function would be stopped first (Lambda's timeout)
            self._sleep(left)
            raise TransientProviderError(f"step {context.index + 1} ran out of time ({work:g} s of work)")
        self._sleep(work)
        text = f"Step {context.index + 1} of {context.total} ({step.title}): done."
        for item in context.clarifications:
            text += f" (the user answered: {item.answer})" if item.answer else " (no answer from the user)"
        if settings.output_kb:  # demo filler, to exercise state larger than the table holds
            text += " " + "demo-filler " * (settings.output_kb * 1024 // 12)
        return StepOutput(text=text, usage=Usage(input_tokens=_tokens(step.instruction), output_tokens=_tokens(text)))

    def finish(
        self, message: str, outputs: list[StepOutput], clarifications: list[QuestionAndAnswer] | None = None
    ) -> Answer:
        text, _ = split_directive(message, self._settings)
        lines = [f"{LABEL} Answer to: {text}", *(output.text for output in outputs)]
        answer = "\n".join(lines)
        artifacts = []
        if _REPORT.search(text):  # asked for a report: the demo writes one, labelled as a demo too
            body = "\n".join([f"# Report: {text}", "", f"_{LABEL}_", "", *(f"- {o.text}" for o in outputs), ""])
            artifacts.append(Artifact(name="report.md", content=body, content_type="text/markdown"))
        return Answer(
            text=answer,
            artifacts=artifacts,
            usage=Usage(input_tokens=sum(_tokens(o.text) for o in outputs), output_tokens=_tokens(answer)),
        )
