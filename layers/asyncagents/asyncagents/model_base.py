"""The base of every pydantic model the functions use."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class LazyModel(BaseModel):
    """A model whose validator and serializer are built the first time they are used, not when its module loads.

    A Lambda container imports every model its handler can reach, and pydantic builds each one's schema at class
    creation: most of our own share of a cold start. Deferred, a container builds only the models its requests use
    (the API's routes each use a few), and none of the built formation's (``config.load_built_formation``).
    """

    model_config = ConfigDict(defer_build=True)
