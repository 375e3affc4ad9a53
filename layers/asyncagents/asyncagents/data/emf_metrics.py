"""Measures published as CloudWatch Embedded Metric Format lines (Lambda's log stream → CloudWatch metrics: no
API call, no latency, nothing to retry). Powertools' EMF provider writes the document; each ``emit`` is one
line of its own, so concurrent deliveries on a thread pool never share (or lose) a metric set."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any


class EmfMetrics:
    """``emit`` writes one EMF document under ``namespace`` with ``dimensions`` (the stack's name) to ``write``
    (standard output on Lambda; the local stack collects the lines instead)."""

    def __init__(self, namespace: str, dimensions: Mapping[str, str], write: Callable[[str], None] = print) -> None:
        self._namespace = namespace
        self._dimensions = dict(dimensions)
        self._write = write

    def emit(self, measures: Mapping[str, tuple[float, str]], *, metadata: Mapping[str, Any] | None = None) -> None:
        if not measures:
            return
        from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

        # service="": no implicit "service" dimension from the environment (dimensions are the stack's alone).
        document = AmazonCloudWatchEMFProvider(namespace=self._namespace, service="", metric_set={}, dimension_set={})
        for name, value in self._dimensions.items():
            document.add_dimension(name=name, value=value)
        for metric, (amount, unit) in measures.items():
            document.add_metric(name=metric, unit=unit, value=amount)
        for key, value in (metadata or {}).items():
            document.add_metadata(key=key, value=value)
        self._write(json.dumps(document.serialize_metric_set(), separators=(",", ":")))
