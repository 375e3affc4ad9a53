"""Route moto's Lambda invocations to the handlers in ``functions/`` running in this process.

moto's Step Functions interpreter invokes Lambda through boto3; with ``lambda.use_docker = False`` moto
answers from ``LambdaSimpleBackend.invoke``, which echoes its input. ``InProcessLambdas`` replaces that
method while installed: the handler runs with the event, its return value becomes the payload, and an
exception becomes a function error shaped like Lambda's (``errorType`` is the exception's class name,
which the state machine's Retry and Catch match on).
"""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]


TIMEOUT_SETTLE = 0.5


@dataclass
class LocalContext:
    """Enough of Lambda's context object for Powertools and our handlers."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    timeout_seconds: float = 900.0  # the function's Timeout in the template
    started: float = field(default_factory=time.time)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout_seconds - time.time()) * 1000))


def load_handler(code_dir: Path, handler: str, *, module_alias: str) -> Handler:
    """Import ``module.function`` from a function's code directory under a unique module name
    (every function's file is ``app.py``)."""
    module_name, _, function_name = handler.rpartition(".")
    source = code_dir / f"{module_name.replace('.', '/')}.py"
    spec = importlib.util.spec_from_file_location(module_alias, source)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {source}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    collecting = gc.isenabled()
    try:
        spec.loader.exec_module(module)
    finally:
        # A handler pauses the GC while it loads (asyncagents.coldstart); one whose init fails must not leave this
        # long-lived process without it (on Lambda a failed init ends the process).
        if collecting:
            gc.enable()
    return getattr(module, function_name)


class InProcessLambdas:
    """A registry of function name → handler, installed over moto's simple Lambda backend."""

    def __init__(self) -> None:
        self._handlers: dict[str, tuple[Handler, str, float]] = {}
        self._original: Any = None

    def register(self, function_name: str, arn: str, handler: Handler, *, timeout: float = 900.0) -> None:
        self._handlers[function_name] = (handler, arn, timeout)

    def handler_of(self, function_name: str) -> Handler:
        return self._handlers[function_name][0]

    def install(self) -> None:
        registry = self
        self._original = LambdaSimpleBackend.invoke

        def invoke(
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> bytes:
            return registry.invoke(function_name, body, response_headers)

        LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if self._original is not None:
            LambdaSimpleBackend.invoke = self._original  # type: ignore[method-assign]
            self._original = None

    def invoke(self, function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
        name = function_name.rsplit(":function:", 1)[-1].split(":", 1)[0]
        if name not in self._handlers:
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload("ResourceNotFoundException", f"no local handler for {name}")
        handler, arn, timeout = self._handlers[name]
        event = json.loads(body) if body else {}
        # moto's interpreter lets a result that arrives just as a Task times out win over the timeout (AWS
        # ignores it): the function is told it has a little longer, so that the Task's timeout comes first.
        context = LocalContext(function_name=name, invoked_function_arn=arn, timeout_seconds=timeout + TIMEOUT_SETTLE)
        try:
            result = handler(event, context)
        except Exception as error:  # a Lambda function error, exactly as the service reports one
            response_headers["x-amz-function-error"] = "Unhandled"
            logger.info("%s raised %s: %s", name, type(error).__name__, error)
            return _error_payload(type(error).__name__, str(error), traceback.format_exc().splitlines())
        return json.dumps(result).encode()


def _error_payload(error_type: str, message: str, trace: list[str] | None = None) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": trace or []}).encode()
