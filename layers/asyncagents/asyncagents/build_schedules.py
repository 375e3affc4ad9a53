"""Add the formation's schedules to the template ``sam build`` wrote (``make build`` runs it after the build)::

    python -m asyncagents.build_schedules formation.yaml .aws-sam/build/template.yaml

The template is rewritten as JSON (which is YAML too: ``sam deploy`` reads it as it is). Schedules a previous
build added are replaced, so the built template always holds exactly the formation's. Exit status 2 when the
formation is invalid or the template cannot be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from asyncagents.config import load_formation
from asyncagents.domain.errors import ConfigError
from asyncagents.schedule_resources import schedule_resources


def build(formation_path: str | Path, template_path: str | Path) -> int:
    """Rewrite the template with the formation's schedules; returns how many it holds."""
    from samtranslator.yaml_helper import yaml_parse  # reads CloudFormation's short forms (!Ref, !Sub)

    formation = load_formation(formation_path)
    template_path = Path(template_path)
    template = yaml_parse(template_path.read_text(encoding="utf-8"))
    resources = template["Resources"]
    for name in [
        n
        for n, r in resources.items()
        if n.startswith("FormationSchedule") and r.get("Type") == "AWS::Scheduler::Schedule"
    ]:
        del resources[name]
    added = schedule_resources(formation)
    clash = sorted(set(added) & set(resources))
    if clash:
        raise ConfigError(f"schedules: {clash[0]} is already a resource of the template")
    resources.update(added)
    template_path.write_text(json.dumps(template, indent=1) + "\n", encoding="utf-8")
    return len(added)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m asyncagents.build_schedules <formation.yaml> <built template>", file=sys.stderr)
        return 2
    try:
        count = build(args[0], args[1])
    except (ConfigError, OSError, KeyError, ValueError) as error:
        print(f"cannot add the formation's schedules: {error}", file=sys.stderr)
        return 2
    print(f"{count} formation schedule(s) -> {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
