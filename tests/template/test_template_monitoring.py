"""The monitoring the built template carries (seed 000's Monitoring section; README, "Monitoring"), checked on the
transformed template: tracing, execution and access logs, the alarm topic, each alarm, the dashboard."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from asyncagents.config import parse_formation
from asyncagents.domain import telemetry

from .helpers import FUNCTIONS

pytestmark = pytest.mark.template

TOPIC = {"Fn::If": ["HasAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]}


def alarms(cfn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: r["Properties"] for n, r in cfn["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def metrics_of(alarm: dict[str, Any]) -> set[tuple[str, str]]:
    """(namespace, metric) of an alarm, plain or metric math."""
    if "MetricName" in alarm:
        return {(alarm["Namespace"], alarm["MetricName"])}
    return {
        (query["MetricStat"]["Metric"]["Namespace"], query["MetricStat"]["Metric"]["MetricName"])
        for query in alarm["Metrics"]
        if "MetricStat" in query
    }


def dimension_values(alarm: dict[str, Any]) -> list[Any]:
    queries = (
        [alarm] if "MetricName" in alarm else [q["MetricStat"]["Metric"] for q in alarm["Metrics"] if "MetricStat" in q]
    )
    return [d["Value"] for query in queries for d in query.get("Dimensions", [])]


def test_every_alarm_notifies_the_alarm_topic_which_can_mail_someone(cfn: dict[str, Any]) -> None:
    found = alarms(cfn)
    assert len(found) >= 25
    assert all(alarm["AlarmActions"] == [TOPIC] for alarm in found.values()), [
        name for name, alarm in found.items() if alarm["AlarmActions"] != [TOPIC]
    ]
    subscription = cfn["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "MailsAlarms" and subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


def test_each_function_has_an_errors_and_throttles_alarm(cfn: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        (alarm,) = [
            a
            for a in alarms(cfn).values()
            if {"Ref": function} in dimension_values(a) and ("AWS/Lambda", "Errors") in metrics_of(a)
        ]
        assert ("AWS/Lambda", "Throttles") in metrics_of(alarm), function


def test_the_run_functions_alarm_does_not_count_its_handovers_as_errors(cfn: dict[str, Any]) -> None:
    (alarm,) = [a for a in alarms(cfn).values() if {"Ref": "RunFunction"} in dimension_values(a)]
    assert ("asyncagents", "RunHandovers") in metrics_of(alarm)
    (expression,) = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
    assert "FILL(errors, 0) - FILL(handovers, 0)" in expression


@pytest.mark.parametrize(
    ("namespace", "metric", "dimension"),
    [
        ("AWS/States", "ExecutionsFailed", {"Ref": "RequestWorkflow"}),
        ("AWS/States", "ExecutionsTimedOut", {"Ref": "RequestWorkflow"}),
        ("AWS/States", "ExecutionThrottled", {"Ref": "RequestWorkflow"}),
        ("AWS/Lambda", "IteratorAge", {"Ref": "NotifyFunction"}),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", {"Fn::GetAtt": ["WebhookQueue", "QueueName"]}),
        ("AWS/ApiGateway", "5xx", {"Ref": "HttpApi"}),
        ("AWS/ApiGateway", "Latency", {"Ref": "HttpApi"}),
        ("AWS/ApiGateway", "5xx", {"Ref": "JwtHttpApi"}),
        ("AWS/ApiGateway", "Latency", {"Ref": "JwtHttpApi"}),
        ("asyncagents", "WebhookDead", {"Ref": "AWS::StackName"}),
        ("asyncagents", "SweeperRepairs", {"Ref": "AWS::StackName"}),
    ],
)
def test_the_alarms_that_matter_exist(cfn: dict[str, Any], namespace: str, metric: str, dimension: Any) -> None:
    assert [
        a for a in alarms(cfn).values() if (namespace, metric) in metrics_of(a) and dimension in dimension_values(a)
    ]


def test_thresholds_come_from_the_formation(cfn: dict[str, Any]) -> None:
    found = alarms(cfn)
    assert found["ApiLatencyAlarm"]["Threshold"] == {"Ref": "ApiP99AlarmMilliseconds"}
    assert found["ApiLatencyAlarm"]["ExtendedStatistic"] == "p99"
    assert found["WebhookSuccessRateAlarm"]["Threshold"] == {"Ref": "WebhookSuccessAlarmPercent"}
    assert found["WebhookSuccessRateAlarm"]["ComparisonOperator"] == "LessThanThreshold"
    parameters = parse_formation(
        {"observability": {"webhook_success_alarm_percent": 99, "alarm_email": "ops@example.com"}}
    ).template_parameters()
    assert parameters["WebhookSuccessAlarmPercent"] == "99.0" and parameters["AlarmEmail"] == "ops@example.com"
    # the default p99 alarm leaves room for a sync request's wait, which holds its call by design
    assert (
        parse_formation({"async": {"sync_wait_seconds": 10}}).template_parameters()["ApiP99AlarmMilliseconds"]
        == "13000"
    )


def test_functions_and_the_workflow_are_traced_and_the_workflow_logs_errors(cfn: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        tracing = cfn["Resources"][function]["Properties"]["TracingConfig"]
        assert tracing == {"Mode": {"Fn::If": ["Traced", "Active", "PassThrough"]}}, function
    machine = cfn["Resources"]["RequestWorkflow"]["Properties"]
    assert machine["TracingConfiguration"] == {"Enabled": {"Fn::If": ["Traced", True, False]}}
    logging = machine["LoggingConfiguration"]["Fn::If"][1]
    assert logging["Level"] == {"Ref": "WorkflowLogLevel"} and logging["IncludeExecutionData"] is False
    assert cfn["Parameters"]["WorkflowLogLevel"]["Default"] == "ERROR"
    group = cfn["Resources"]["WorkflowLogs"]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_api_access_logs_and_every_log_group_keep_the_one_retention(cfn: dict[str, Any]) -> None:
    stages = [r["Properties"] for r in cfn["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert len(stages) == 2  # the API, and the JWT API (with auth.jwt)
    for stage in stages:
        assert stage["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]}
        assert "$context.status" in stage["AccessLogSettings"]["Format"]
    groups = [r["Properties"] for r in cfn["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) == len(FUNCTIONS) + 2
    assert all(group["RetentionInDays"] == {"Ref": "LogRetentionDays"} for group in groups)


def test_the_dashboard_shows_the_four_figures_outcomes_latency_webhooks_dead_letters_throttles_errors(
    cfn: dict[str, Any],
) -> None:
    body = cfn["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    # Every ${...} is something the stack defines (CloudFormation substitutes them)
    names = set(re.findall(r"\$\{([A-Za-z:]+)(?:\.[A-Za-z]+)?\}", body))
    assert names <= set(cfn["Resources"]) | {"AWS::Region", "AWS::StackName"}, names - set(cfn["Resources"])
    widgets = json.loads(body)["widgets"]
    titles = " | ".join(w["properties"]["title"] for w in widgets)
    for expected in ("four figures", "outcomes", "duration", "Model", "Webhooks", "Dead-letter", "Throttles", "Errors"):
        assert expected in titles, expected
    plotted = {metric[1] for w in widgets for metric in w["properties"]["metrics"] if isinstance(metric[0], str)}
    own = {
        telemetry.REQUEST_DURATION,
        telemetry.REQUESTS_COMPLETED,
        telemetry.REQUESTS_FAILED,
        telemetry.REQUESTS_TIMED_OUT,
        telemetry.UNFINISHED_REQUESTS,
        *telemetry.WEBHOOK_OUTCOMES.values(),
        telemetry.MODEL_LATENCY,
        telemetry.MODEL_THROTTLES,
    }
    assert own <= plotted, own - plotted
    # the emitted metrics' names and the dashboard's agree (a renamed metric would chart nothing)
    assert {"Errors", "Throttles", "ApproximateNumberOfMessagesVisible", "ExecutionThrottled"} <= plotted


def test_metric_math_fills_missing_data_so_an_alarm_sees_a_lone_series(cfn: dict[str, Any]) -> None:
    """A metric nothing emitted in a period has no data, and arithmetic on a missing series is missing: an hour of
    dead letters alone, or throttles without errors, would never alarm. Each metric is FILLed where it is used."""
    for name, alarm in alarms(cfn).items():
        if "Metrics" not in alarm:
            continue
        ids = [query["Id"] for query in alarm["Metrics"] if "MetricStat" in query]
        (expression,) = [query["Expression"] for query in alarm["Metrics"] if "Expression" in query]
        for metric in ids:
            assert f"FILL({metric}, 0)" in expression, (name, metric, expression)
