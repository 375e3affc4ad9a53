"""A request's plan: its steps, what each depends on, and the waves they run in."""

from __future__ import annotations

from asyncagents.model_base import LazyModel


class PlannedStep(LazyModel):
    """One step of a plan. ``depends_on`` lists earlier steps (0-based) whose outputs it needs; ``None``
    (plans made before dependencies existed, or a model that did not say) means every earlier step.
    Steps with no dependency between them may run at once."""

    title: str
    instruction: str
    depends_on: list[int] | None = None

    def dependencies(self, index: int) -> list[int]:
        """The earlier steps this one (at ``index``) waits for; references to itself or later are ignored
        (a plan can never deadlock)."""
        if self.depends_on is None:
            return list(range(index))
        return sorted({d for d in self.depends_on if 0 <= d < index})


def plan_waves(steps: list[PlannedStep]) -> list[list[int]]:
    """Group step indexes into waves: every step runs in the wave after the last of its dependencies."""
    wave_of: list[int] = []
    for index, step in enumerate(steps):
        earlier = [wave_of[d] for d in step.dependencies(index)]
        wave_of.append(max(earlier) + 1 if earlier else 0)
    waves: list[list[int]] = [[] for _ in range(max(wave_of, default=-1) + 1)]
    for index, wave in enumerate(wave_of):
        waves[wave].append(index)
    return waves


def needed_steps(steps: list[PlannedStep], index: int) -> list[int]:
    """The earlier steps whose outputs step ``index`` sees: its dependencies and theirs, in plan order."""
    needed: set[int] = set()
    pending = steps[index].dependencies(index)
    while pending:
        step = pending.pop()
        if step not in needed:
            needed.add(step)
            pending.extend(steps[step].dependencies(step))
    return sorted(needed)
