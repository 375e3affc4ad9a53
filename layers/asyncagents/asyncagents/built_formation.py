"""The formation as the layer ships it: validated once, at build time, and never again at run time.

``make build`` validates the formation YAML and writes two files into the layer: ``formation.json`` (the normalised
document, for people and tools) and, beside it, ``formation.pickle``, the validated ``FormationConfig`` itself.
A function's first request reads the pickle: the objects come back as they were built, without pydantic building a
single formation model's validator (about 20 ms of a first request, 45 ms with triggers and schedules, which
loading the JSON would cost again in every new container). The pickle is what validating the JSON gives, and
carries a stamp: its format, pydantic's major version and the JSON's digest. A pickle that is missing, unreadable or
stamped otherwise (another build's, or a JSON edited since) is ignored and the JSON is validated, as before. The
file comes from the same build as the code beside it in the layer, which is what makes unpickling it as safe as
importing that code; it is read only beside the JSON it was made from.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pydantic

from asyncagents.config import FormationConfig, load_formation, parse_formation

_FORMAT = 1


def _stamp(document: bytes) -> tuple[int, str, str]:
    return _FORMAT, pydantic.VERSION.split(".")[0], hashlib.sha256(document).hexdigest()


def pickled_path(json_path: str | Path) -> Path:
    """Where the validated formation lies beside the built ``formation.json``."""
    return Path(json_path).with_suffix(".pickle")


def write_built(formation: FormationConfig, target: str | Path) -> None:
    """``target`` (the JSON document: aliases, defaults filled in) and the pickle beside it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    document = json.dumps(formation.model_dump(by_alias=True, mode="json"), indent=2, sort_keys=True) + "\n"
    target.write_text(document, encoding="utf-8")
    # What the JSON validates to, exactly (a YAML date kept as is by an ``Any`` field is a string in the JSON).
    shipped = parse_formation(json.loads(document), source=str(target))
    stamped = (_stamp(document.encode("utf-8")), shipped)
    pickled_path(target).write_bytes(pickle.dumps(stamped, protocol=pickle.HIGHEST_PROTOCOL))


def load_built(path: str | Path) -> FormationConfig:
    """The formation a function runs with: the build's validated objects when they are there and readable, else
    ``path`` validated (a YAML file in the local stack, a JSON file from an older build)."""
    path = Path(path)
    if path.suffix == ".json":
        try:
            document = path.read_bytes()
            stamp, formation = pickle.loads(pickled_path(path).read_bytes())
        except Exception:  # whatever the reason, the JSON is validated instead
            pass
        else:
            if stamp == _stamp(document) and isinstance(formation, FormationConfig):
                return formation
    return load_formation(path)
