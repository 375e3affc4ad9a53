"""The stack's own metrics read back from CloudWatch (``GetMetricData``): one statistic of each named metric over
a window, in one call."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

# GetMetricData answers at most 500 queries a call; ours are a dozen.
_MINUTE = 60


class CloudWatchMetrics:
    """Statistics of metrics in ``namespace`` with exactly ``dimensions`` (those the EMF lines carry)."""

    def __init__(self, client: Callable[[], Any], namespace: str, dimensions: Mapping[str, str]) -> None:
        self._client = client
        self._namespace = namespace
        self._dimensions = [{"Name": name, "Value": value} for name, value in dimensions.items()]

    def totals(self, wanted: Sequence[tuple[str, str]], start: datetime, end: datetime) -> dict[tuple[str, str], float]:
        """``(metric, statistic)`` → its value over ``[start, end)`` (``Sum`` or ``SampleCount``, added up over the
        periods CloudWatch answers with); a metric with no data is 0."""
        # One period for the whole window (a whole number of minutes), so each query has a point or two.
        period = max(_MINUTE, math.ceil((end - start).total_seconds() / _MINUTE) * _MINUTE)
        queries = [
            {
                "Id": f"m{index}",
                "MetricStat": {
                    "Metric": {"Namespace": self._namespace, "MetricName": name, "Dimensions": self._dimensions},
                    "Period": period,
                    "Stat": statistic,
                },
                "ReturnData": True,
            }
            for index, (name, statistic) in enumerate(wanted)
        ]
        found = {(name, statistic): 0.0 for name, statistic in wanted}
        arguments: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
        while True:
            response = self._client().get_metric_data(**arguments)
            for result in response.get("MetricDataResults", []):
                found[wanted[int(result["Id"][1:])]] += float(sum(result.get("Values", [])))
            if not response.get("NextToken"):
                return found
            arguments["NextToken"] = response["NextToken"]
