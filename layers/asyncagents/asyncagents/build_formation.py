"""Validate a formation YAML file and write it as the JSON the layer ships (``/opt/formation.json``).

Used by the layer's Makefile during ``sam build``::

    python -m asyncagents.build_formation formation.yaml "$ARTIFACTS_DIR/formation.json"

Exit status 0 on success, 2 when the formation is invalid (the message names the bad key) or the
arguments are wrong.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from asyncagents.config import load_formation
from asyncagents.domain.errors import ConfigError


def build(source: str | Path, target: str | Path) -> None:
    """Validate ``source`` and write its normalised JSON form (aliases, defaults filled in) to ``target``."""
    formation = load_formation(source)
    document = formation.model_dump(by_alias=True, mode="json")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m asyncagents.build_formation <formation.yaml> <formation.json>", file=sys.stderr)
        return 2
    try:
        build(args[0], args[1])
    except ConfigError as error:
        print(f"invalid formation: {error.message}", file=sys.stderr)
        return 2
    print(f"formation {args[0]} -> {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
