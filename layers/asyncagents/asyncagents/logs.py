"""Structured logs: every line a function writes, the package's own loggers' included, goes out as the handler's
Powertools JSON with the keys that say which request it is about, its ``request_id`` included once the
function has read or written the request's record (README, "Monitoring")."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

_PACKAGE = "asyncagents"
_routed: set[int] = set()
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def about_request(request_id: str) -> None:
    """The lines this invocation writes from now on name ``request_id`` (set when a request's record is read or
    written: the workflow's tasks, the sender and the reconciler learn it then)."""
    _request_id.set(request_id)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        request_id = _request_id.get()
        if request_id and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


def correlate(logger: Any, **keys: Any) -> None:
    """Route the package's loggers through ``logger`` (once per container, on Lambda only: elsewhere, tests and
    the local stack keep the standard logging they capture), and put ``keys`` on every line of this invocation."""
    from asyncagents import runtime

    _request_id.set(None)  # a warm container's previous invocation was about another request
    if id(logger) not in _routed and runtime.current().settings.lambda_function_name:
        from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

        logger.registered_handler.addFilter(_RequestIdFilter())
        logging.getLogger(_PACKAGE)  # registered, so that its children (created later) inherit the handler
        copy_config_to_registered_loggers(source_logger=logger, include={_PACKAGE})
        _routed.add(id(logger))
    if keys:
        logger.append_keys(**keys)
