"""Structured logs: every line a function writes, the package's own loggers' included, goes out as the handler's
Powertools JSON with the keys that say which request it is about (README, "Monitoring")."""

from __future__ import annotations

import logging
from typing import Any

_PACKAGE = "asyncagents"
_routed: set[int] = set()


def correlate(logger: Any, **keys: Any) -> None:
    """Route the package's loggers through ``logger`` (once per container, on Lambda only: elsewhere, tests and
    the local stack keep the standard logging they capture), and put ``keys`` on every line of this invocation."""
    from asyncagents import runtime

    if id(logger) not in _routed and runtime.current().settings.lambda_function_name:
        from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

        logging.getLogger(_PACKAGE)  # registered, so that its children (created later) inherit the handler
        copy_config_to_registered_loggers(source_logger=logger, include={_PACKAGE})
        _routed.add(id(logger))
    if keys:
        logger.append_keys(**keys)
