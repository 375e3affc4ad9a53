"""The spend caps (admin): ``GET /v1/admin/spend`` shows today's and this month's spending against the caps, for
the formation and for each key counted (or one key, ``?key_id=``)."""

from dataclasses import asdict
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from asyncagents import runtime
from asyncagents.api.routing import json_response, route

KeyIdQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=300,
        pattern=r"^[A-Za-z0-9_:.@-]+$",
        description="One key's (or JWT user's, jwt:<user>) spending only.",
    ),
]


@route(
    "GET", "/v1/admin/spend", key="admin", model="SpendReport", summary="Spending against the daily and monthly caps"
)
def spending(key_id: KeyIdQuery = None) -> Response[Any]:
    current = runtime.current()
    caps = current.spend_caps
    counters = [asdict(usage) for usage in caps.usage(key_id)] if caps.capped else []
    return json_response(200, {"capped": caps.capped, "counters": counters, "count": len(counters)})
