"""The formation as the layer ships it: validated once, at build time, and never again at run time.

``make build`` validates the formation YAML and writes two files into the layer: ``formation.json`` (the normalised
document, for people and tools) and, beside it, ``formation.pickle``, the validated ``FormationConfig`` itself.
A function's first request reads the pickle: the objects come back as they were built, without pydantic building a
single formation model's validator (about 20 ms of a first request, 45 ms with triggers and schedules, which
loading the JSON would cost again in every new container). The pickle carries a stamp (its format and pydantic's
major version); a pickle that is missing, stamped otherwise or unreadable is ignored and the JSON is validated, as
before. The file comes from the same build as the code beside it in the layer, which is what makes unpickling it
as safe as importing that code: no other path is ever unpickled.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pydantic

from asyncagents.config import FormationConfig, load_formation

_FORMAT = 1


def _stamp() -> tuple[int, str]:
    return _FORMAT, pydantic.VERSION.split(".")[0]


def pickled_path(json_path: str | Path) -> Path:
    """Where the validated formation lies beside the built ``formation.json``."""
    return Path(json_path).with_suffix(".pickle")


def write_built(formation: FormationConfig, target: str | Path) -> None:
    """``target`` (the JSON document: aliases, defaults filled in) and the pickle beside it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    document = formation.model_dump(by_alias=True, mode="json")
    target.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    pickled_path(target).write_bytes(pickle.dumps((_stamp(), formation), protocol=pickle.HIGHEST_PROTOCOL))


def load_built(path: str | Path) -> FormationConfig:
    """The formation a function runs with: the build's validated objects when they are there and readable, else
    ``path`` validated (a YAML file in the local stack, a JSON file from an older build)."""
    path = Path(path)
    if path.suffix == ".json":
        try:
            stamp, formation = pickle.loads(pickled_path(path).read_bytes())
        except (OSError, pickle.UnpicklingError, AttributeError, ImportError, EOFError, TypeError, ValueError):
            pass
        else:
            if stamp == _stamp() and isinstance(formation, FormationConfig):
                return formation
    return load_formation(path)
