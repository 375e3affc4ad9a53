"""The seed's monitoring figures (admin): ``GET /v1/admin/metrics?window=1h`` (README, "Monitoring")."""

from dataclasses import asdict
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from asyncagents import runtime
from asyncagents.api.routing import json_response, route
from asyncagents.domain.monitoring import WINDOW_PATTERN

Window = Annotated[
    str,
    Query(
        pattern=WINDOW_PATTERN,
        max_length=6,
        description="How far back: a number and m, h or d, from 1m to 14d (e.g. 15m, 1h, 7d).",
    ),
]


@route(
    "GET",
    "/v1/admin/metrics",
    key="admin",
    model="MonitoringView",
    summary="Average duration, success rate, webhook delivery success and queue depth over a window",
)
def figures(window: Window = "1h") -> Response[Any]:
    return json_response(200, asdict(runtime.current().monitoring.figures(window)))
