"""What auto mode learned (admin): ``GET /v1/admin/estimator`` shows it, ``DELETE /v1/admin/estimator/history``
forgets it (after a model change, or after the local stack's demo provider taught it that everything is quick)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response

from asyncagents import runtime
from asyncagents.api.routing import json_response, route


@route("GET", "/v1/admin/estimator", key="admin", summary="What auto mode learned, per kind of request")
def learned() -> Response[Any]:
    current = runtime.current()
    formation = current.formation
    kinds = current.estimator.learned(formation.formation_id)
    return json_response(
        200,
        {
            "formation_id": formation.formation_id,
            "mode": formation.async_.mode.value,
            "threshold_seconds": formation.async_.threshold_seconds,
            "kinds": [kind.model_dump() for kind in kinds],
            "count": len(kinds),
        },
    )


@route("DELETE", "/v1/admin/estimator/history", key="admin", summary="Forget what auto mode learned")
def forget() -> Response[Any]:
    current = runtime.current()
    forgotten = current.estimator.forget(current.formation.formation_id)
    # Other warm API containers keep what they read for up to a minute (the estimator's cache).
    return json_response(200, {"formation_id": current.formation.formation_id, "forgotten_kinds": forgotten})
