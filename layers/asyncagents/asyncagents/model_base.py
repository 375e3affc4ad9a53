"""The base of every pydantic model the functions use."""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel, ConfigDict

# pydantic builds a deferred model on its first use, from whichever thread uses it first; before 2.14 two threads
# doing so at once could each rebuild it, and one could see a validator deleted under it (an instance left empty,
# without an error: pydantic issue 11849). The Run function's steps run on threads and the local stack serves
# invocations on threads: builds wait for one another here (re-entrant, as building a model builds those it holds).
_BUILDING = threading.RLock()


class LazyModel(BaseModel):
    """A model whose validator and serializer are built the first time they are used, not when its module loads.

    A Lambda container imports every model its handler can reach, and pydantic builds each one's validator when its
    class is created: most of our own share of a cold start. Deferred, a container builds only the models its
    requests use (the API's routes each use a few) and none of the built formation's
    (``asyncagents.built_formation``). Defaults that are models are written as factories: an instance made in a
    class body would build its model at import.
    """

    model_config = ConfigDict(defer_build=True)

    @classmethod
    def model_rebuild(
        cls,
        *,
        force: bool = False,
        raise_errors: bool = True,
        _parent_namespace_depth: int = 2,
        _types_namespace: Any = None,
    ) -> bool | None:
        """pydantic's, one build at a time (see ``_BUILDING``)."""
        with _BUILDING:
            return super().model_rebuild(
                force=force,
                raise_errors=raise_errors,
                # One frame more than pydantic counts: this one.
                _parent_namespace_depth=_parent_namespace_depth + 1 if _parent_namespace_depth > 0 else 0,
                _types_namespace=_types_namespace,
            )
