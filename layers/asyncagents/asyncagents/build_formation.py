"""Validate a formation YAML file and write it as the layer ships it (``/opt/formation.json``, and the validated
objects beside it: ``asyncagents.built_formation``).

Used by the layer's Makefile during ``sam build``::

    python -m asyncagents.build_formation formation.yaml "$ARTIFACTS_DIR/formation.json"

Exit status 0 on success, 2 when the formation is invalid (the message names the bad key) or the
arguments are wrong.
"""

from __future__ import annotations

import sys
from pathlib import Path

from asyncagents.built_formation import write_built
from asyncagents.config import load_formation
from asyncagents.domain.errors import ConfigError


def build(source: str | Path, target: str | Path) -> None:
    """Validate ``source`` and write its normalised JSON form (aliases, defaults filled in) to ``target``, with the
    validated formation beside it."""
    write_built(load_formation(source), target)


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
