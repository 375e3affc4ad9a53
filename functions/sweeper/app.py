"""SweeperFunction: every few minutes (EventBridge Scheduler), ends or restarts the requests that should have
finished: the last line of defence when a status event was lost or the API died before starting a workflow."""

import time

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from asyncagents import runtime

logger = Logger(service="asyncagents-sweeper")
metrics = Metrics(namespace="asyncagents", service="sweeper")


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    # Stop with a minute to spare: what is left waits for the next sweep, never for a timed-out one.
    report = runtime.current().sweeper.sweep(deadline=time.time() + context.get_remaining_time_in_millis() / 1000 - 60)
    metrics.add_metric(name="SweeperChecked", unit=MetricUnit.Count, value=report.checked)
    metrics.add_metric(name="SweeperRepairs", unit=MetricUnit.Count, value=report.repaired)
    return {
        "checked": report.checked,
        "started": report.started,
        "reconciled": report.reconciled,
        "failed": report.failed,
        "running": report.running,
    }
