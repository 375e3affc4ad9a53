"""The runtime's monitoring parts (a mixin of ``runtime.Runtime``): the metrics the functions emit, and the seed's
figures read back (README, "Monitoring")."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

from asyncagents.runtime_parts import RuntimeParts

if TYPE_CHECKING:
    from asyncagents.domain.monitoring import Monitoring
    from asyncagents.domain.telemetry import Telemetry


_stdout_lock = threading.Lock()


class Observing(RuntimeParts):
    """Built once per container, like the rest of the runtime."""

    @cached_property
    def telemetry(self) -> Telemetry:
        """Every measure of this function, as EMF lines on standard output (CloudWatch makes them metrics)."""
        from asyncagents.data.emf_metrics import EmfMetrics

        return EmfMetrics(self.settings.metrics_namespace, self.metric_dimensions, write=self.write_metric_line)

    @property
    def metric_dimensions(self) -> dict[str, str]:
        return {"Stack": self.settings.stack_name}

    def write_metric_line(self, line: str) -> None:
        """One write per line, under a lock: the sender's delivery threads emit at once, and two documents run
        together on one line would both be lost (CloudWatch parses each line as one EMF document)."""
        import sys

        with _stdout_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    @cached_property
    def request_telemetry(self) -> Telemetry:
        """The request metrics, unless the formation turned them off (``observability.track_async_tasks``)."""
        from asyncagents.domain.telemetry import NO_TELEMETRY

        return self.telemetry if self.formation.observability.track_async_tasks else NO_TELEMETRY

    def unfinished_requests(self) -> int:
        """Requests pending, processing or awaiting an answer now (count queries on the Unfinished index)."""
        from asyncagents.data.request_index import count_unfinished

        return count_unfinished(self.dynamodb, self.settings.table_name)

    @cached_property
    def cloudwatch(self) -> Any:
        from asyncagents.runtime import _client

        return _client("cloudwatch", self.settings.aws_region)

    @cached_property
    def monitoring(self) -> Monitoring:
        from asyncagents.data.cloudwatch_metrics import CloudWatchMetrics
        from asyncagents.data.work_depth import WorkDepth
        from asyncagents.domain.monitoring import Monitoring
        from asyncagents.domain.times import utc_now

        metrics = CloudWatchMetrics(lambda: self.cloudwatch, self.settings.metrics_namespace, self.metric_dimensions)
        depth = WorkDepth(self.dynamodb, self.settings.table_name, self.webhook_queue)
        return Monitoring(metrics, depth, clock=utc_now)
