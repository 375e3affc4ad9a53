"""What CloudWatch does with the functions' EMF lines, done locally: each line becomes metric data (moto's
CloudWatch, so ``GET /v1/admin/metrics`` reads it back with ``GetMetricData`` as on AWS), and is kept, so tests
can assert what a request emitted."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any


class LocalMetrics:
    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch
        self._lock = threading.Lock()
        self.documents: list[dict[str, Any]] = []

    def write(self, line: str) -> None:
        document = json.loads(line)
        with self._lock:
            self.documents.append(document)
        meta = document["_aws"]
        at = datetime.fromtimestamp(meta["Timestamp"] / 1000, UTC)
        for directive in meta["CloudWatchMetrics"]:
            dimensions = [{"Name": name, "Value": str(document[name])} for name in directive["Dimensions"][0]]
            data = [
                {
                    "MetricName": metric["Name"],
                    "Dimensions": dimensions,
                    "Timestamp": at,
                    "Values": [float(value) for value in _values(document[metric["Name"]])],
                    "Unit": metric.get("Unit", "None"),
                }
                for metric in directive["Metrics"]
            ]
            self._cloudwatch.put_metric_data(Namespace=directive["Namespace"], MetricData=data)

    def emitted(self, name: str) -> list[tuple[float, dict[str, Any]]]:
        """Every value of metric ``name`` so far, with the document's metadata and dimensions."""
        with self._lock:
            documents = list(self.documents)
        return [
            (float(value), {key: item for key, item in document.items() if key != "_aws"})
            for document in documents
            if name in document
            for value in _values(document[name])
        ]


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
