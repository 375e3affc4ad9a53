"""Structured logs on Lambda: the package's own loggers write the handler's Powertools JSON, with the keys of the
invocation and the request id once a record was read (``asyncagents.logs``)."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from aws_lambda_powertools import Logger

from asyncagents import logs, runtime


@pytest.fixture
def on_lambda():
    """A container that Lambda runs (its function name is set), and the package's logging restored afterwards."""
    package = logging.getLogger("asyncagents")
    saved = (list(package.handlers), package.propagate, package.level, set(logs._routed))
    runtime.install(runtime.Runtime({"TABLE_NAME": "requests", "AWS_LAMBDA_FUNCTION_NAME": "plan"}))
    yield
    runtime.install(None)
    package.handlers[:], package.propagate, package.level = saved[0], saved[1], saved[2]
    logs._routed.clear()
    logs._routed.update(saved[3])


def test_every_line_of_an_invocation_names_its_request(on_lambda):
    written = io.StringIO()
    # A service of its own: Powertools keeps one logger per service name in the process, and other tests load
    # the functions' handlers (with theirs).
    service = f"asyncagents-test-{uuid.uuid4().hex[:8]}"
    logger = Logger(service=service, logger_handler=logging.StreamHandler(written))
    domain = logging.getLogger("asyncagents.domain.workflow.example")

    # Given an invocation about a request key, when the record is read and the domain logs
    logs.correlate(logger, request_key="k" * 32, execution="exec-1")
    domain.warning("before the record was read")
    logs.about_request("req_1")
    domain.warning("the step failed")
    # and the next invocation of the warm container is about another request
    logs.correlate(logger, request_key="j" * 32, execution="exec-2")
    domain.warning("a new invocation")

    first, second, third = [json.loads(line) for line in written.getvalue().splitlines()]
    # Then each line is the handler's JSON with the invocation's keys, and the request id once known
    assert first["message"] == "before the record was read" and "request_id" not in first
    assert (second["request_id"], second["request_key"], second["execution"]) == ("req_1", "k" * 32, "exec-1")
    assert second["level"] == "WARNING" and second["service"] == service
    assert "request_id" not in third and third["request_key"] == "j" * 32


def test_off_lambda_the_package_keeps_standard_logging(caplog):
    runtime.install(runtime.Runtime({"TABLE_NAME": "requests"}))
    try:
        logs.correlate(Logger(service=f"asyncagents-test-{uuid.uuid4().hex[:8]}"), request_key="k")
        with caplog.at_level(logging.WARNING, logger="asyncagents"):
            logging.getLogger("asyncagents.domain.x").warning("seen by the test's capture")
        assert "seen by the test's capture" in caplog.text
    finally:
        runtime.install(None)
