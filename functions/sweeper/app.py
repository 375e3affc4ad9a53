"""SweeperFunction: every few minutes (EventBridge Scheduler), ends or restarts the requests that should have
finished: the last line of defence when a status event was lost or the API died before starting a workflow."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from asyncagents import runtime

logger = Logger(service="asyncagents-sweeper")
metrics = Metrics(namespace="asyncagents", service="sweeper")


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    report = runtime.current().sweeper.sweep()
    metrics.add_metric(name="SweeperChecked", unit=MetricUnit.Count, value=report.checked)
    metrics.add_metric(name="SweeperRepairs", unit=MetricUnit.Count, value=report.repaired)
    return {
        "checked": report.checked,
        "started": report.started,
        "reconciled": report.reconciled,
        "failed": report.failed,
        "running": report.running,
    }
