"""A Lambda function's init without the cyclic garbage collector's pauses.

Each handler module imports this module first and calls ``done()`` last. While modules load (boto3, pydantic,
Powertools, ours), the cyclic GC runs over a hundred collections that free almost nothing, since what an import
makes (modules, classes, pydantic's schemas) lives as long as the container: about 45 ms of the API's cold init
on Python 3.12, with the same memory after init (README, "Cold start"). So importing this module pauses the GC,
and ``done()`` freezes what init made (later collections never scan it again) and resumes the GC as it was.

The freeze happens once per process: a Lambda container loads one handler, but the local stack loads every
handler, and again for each stack a test starts; freezing each time would keep whatever garbage existed then
out of reach of the collector for good.
"""

from __future__ import annotations

import gc
import os

_ENABLED_BEFORE = gc.isenabled()
_frozen = False
gc.disable()


def done() -> None:
    """The end of a handler module's init: what it made frozen out of collections (the first time in this
    process), the GC as it was before. Under SnapStart, the models are built first (``build_models``)."""
    global _frozen
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
        build_models()
    if not _frozen:
        gc.freeze()
        _frozen = True
    if _ENABLED_BEFORE:
        gc.enable()


def build_models() -> None:
    """Build every model the handler imported. Models are built by their first use (``model_base.LazyModel``), which
    a container pays in its first requests; a SnapStart snapshot is taken after init, so there init builds them
    once and every container restored from the snapshot starts with them built."""
    from asyncagents.model_base import LazyModel

    pending = list(LazyModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        model.model_rebuild(raise_errors=False)
