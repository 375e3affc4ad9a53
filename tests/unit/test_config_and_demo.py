"""Formation validation and the demo provider's planning and fault injection."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncagents.config import load_formation, parse_formation
from asyncagents.domain.agents import StepContext
from asyncagents.domain.errors import ConfigError, PermanentProviderError, TransientProviderError
from asyncagents.domain.plans import PlannedStep
from asyncagents.providers.demo import LABEL, DemoProvider


def test_defaults_follow_the_seeds():
    formation = parse_formation({})
    assert formation.async_.mode == "auto"
    assert formation.async_.threshold_seconds == 60
    assert formation.async_.result_retention_seconds == 300
    # seeds/000 says 3 retries; we retry for three days (30 retries at most, the window decides) so that a
    # receiver down for a while loses nothing. A formation that says 3 gets the seeds' behaviour.
    assert formation.async_.webhook_retries == 30 and formation.async_.webhook_retry_window_seconds == 259_200
    assert parse_formation({"async": {"webhook_retries": 3}}).async_.webhook_retries == 3
    assert formation.overlord.workflow.timeouts.task_timeout == 300
    assert formation.overlord.workflow.timeouts.workflow_timeout == 3600
    assert formation.template_parameters() == {
        "RunTimeoutSeconds": "897",  # the workflow's hour does not fit: a Run hands over after 897 s
        "WorkflowTimeoutSeconds": "3600",
        "ArtifactsExpirationDays": "19",  # an hour twice and 5 minutes of retention, then 18 days (webhooks)
        "RetryMaxAttempts": "2",
        "RetryIntervalSeconds": "1",
        "RetryMaxDelaySeconds": "60",
        "RetryBackoffRate": "2.0",
        "ClarificationTimeoutSeconds": "900",
        "SweeperIntervalMinutes": "5",
        "RunFunctionTimeoutSeconds": "900",
        "CircuitCoolDownSeconds": "60",
        "NotificationEmail": "",
        "WebhookMaxReceives": "32",
        "BedrockModelId": "",
        "BedrockFoundationModelId": "",
        "OpenAIKeySecretArn": "",
        "TriggerSecretArns": "",
        "ApiReservedConcurrency": "",
        "RecoveryReservedConcurrency": "",
        "JwtIssuer": "",
        "JwtAudiences": "",
        # seeds/000's monitoring is on by default: traces, execution errors logged, alarms to the stack's topic.
        "TracingEnabled": "true",
        "ApiSnapStart": "false",  # SnapStart is paid per GB cached and restored: the user's choice (README)
        "WorkflowLogLevel": "ERROR",
        "AlarmEmail": "",
        "WebhookSuccessAlarmPercent": "90.0",
        "ApiP99AlarmMilliseconds": "28000",
    }
    assert formation.observability.track_async_tasks is True
    # A key's limits: generous for one backend's key that serves all its users, and never unlimited by default.
    assert (formation.limits.requests_per_second, formation.limits.max_active_requests) == (50, 200)
    assert formation.limits.max_sync_waits == 50


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"async": {"treshold_seconds": 10}}, "async.treshold_seconds"),
        ({"async": {"mode": "sometimes"}}, "async.mode"),
        ({"overlord": {"workflow": {"timeouts": {"task_timeout": 0}}}}, "overlord.workflow.timeouts.task_timeout"),
        ({"overlord": {"workflow": {"timeouts": {"task_timeout": 900, "workflow_timeout": 60}}}}, "timeouts"),
        ({"llm": {"provider": "gpt-7"}}, "llm.provider"),
        ([1, 2], "top level"),
    ],
)
def test_bad_formation_names_the_key(document, named):
    with pytest.raises(ConfigError) as caught:
        parse_formation(document)
    assert named in caught.value.message


def test_load_formation_reads_yaml_and_reports_bad_yaml(tmp_path):
    good = tmp_path / "formation.yaml"
    good.write_text("async:\n  mode: async\n  threshold_seconds: 30\n")
    assert load_formation(good).async_.threshold_seconds == 30
    bad = tmp_path / "bad.yaml"
    bad.write_text("async: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_formation(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_formation(tmp_path / "missing.yaml")


def _provider(**settings):
    formation = parse_formation({"llm": {"demo": {"step_seconds": 0, **settings}}})
    return DemoProvider(formation.llm.demo, sleep=lambda _: None)


def _context(message: str, attempt: int = 1) -> StepContext:
    return StepContext(request_id="r", message=message, index=0, total=1, attempt=attempt)


def test_demo_plans_by_clauses_and_respects_max_steps():
    provider = _provider()
    plan = provider.plan("Research 3 competitors, compare features, create report", max_steps=8)
    assert [s.title for s in plan.steps] == ["Research 3 competitors", "Compare features", "Create report"]
    bounded = provider.plan("a, b, c, d, e", max_steps=2)
    assert [s.instruction for s in bounded.steps] == ["a", "b; c; d; e"]
    assert provider.plan("   ", max_steps=3).steps[0].instruction == "Answer the request"


def test_demo_directive_overrides_config_and_is_removed_from_text():
    provider = _provider()
    message = "Summarise this [demo fail_transient=1 step_seconds=0]"
    assert [s.instruction for s in provider.plan(message, max_steps=5).steps] == ["Summarise this"]
    step = PlannedStep(title="Summarise this", instruction="Summarise this")
    with pytest.raises(TransientProviderError):
        provider.run_step(step, _context(message, attempt=1))
    assert "done" in provider.run_step(step, _context(message, attempt=2)).text
    answer = provider.finish(message, [])
    assert answer.text.startswith(LABEL) and "fail_transient" not in answer.text


def test_demo_permanent_failure_and_bad_directive():
    step = PlannedStep(title="x", instruction="x")
    with pytest.raises(PermanentProviderError):
        _provider(fail_permanent=True).run_step(step, _context("x"))
    with pytest.raises(PermanentProviderError, match="invalid demo directive"):
        _provider().run_step(step, _context("x [demo step_seconds=-5]"))


def test_demo_step_sleeps_configured_duration():
    slept: list[float] = []
    formation = parse_formation({"llm": {"demo": {"step_seconds": 1.5}}})
    provider = DemoProvider(formation.llm.demo, sleep=slept.append)
    provider.run_step(PlannedStep(title="x", instruction="x"), _context("x"))
    provider.run_step(PlannedStep(title="x", instruction="x"), _context("x [demo hang_seconds=120]"))
    assert slept == [1.5, 120]


def test_the_function_environment_is_one_validated_model():
    from asyncagents.settings import FunctionSettings

    # Given an environment as the template sets it (optional parameters left empty)
    settings = FunctionSettings.from_environment(
        {"TABLE_NAME": "requests", "STATE_MACHINE_ARN": "", "KEY_CACHE_SECONDS": "5", "AWS_DEFAULT_REGION": "eu-west-1"}
    )
    # Then empty means unset, numbers are numbers, and the region falls back to AWS_DEFAULT_REGION
    assert settings.state_machine_arn is None and settings.key_cache_seconds == 5.0
    assert settings.aws_region == "eu-west-1"
    # And a setting a call cannot do without names its environment variable
    with pytest.raises(ConfigError, match="STATE_MACHINE_ARN is not set"):
        settings.require("state_machine_arn")
    with pytest.raises(ConfigError, match="TABLE_NAME"):
        FunctionSettings.from_environment({})
    with pytest.raises(ConfigError, match="KEY_CACHE_SECONDS"):
        FunctionSettings.from_environment({"TABLE_NAME": "requests", "KEY_CACHE_SECONDS": "-1"})


def test_params_pass_empty_values_so_sam_deploy_never_keeps_a_removed_secret(capsys):
    # `sam deploy` keeps a parameter's previous value when it is not passed: a secret ARN removed from the
    # formation (or a trigger's) must reach it as "" so that the role stops reading it.
    from asyncagents.cli import main

    assert main(["params", str(Path(__file__).resolve().parents[2] / "formation.yaml")]) == 0
    printed = capsys.readouterr().out.split()
    assert 'TriggerSecretArns=""' in printed and 'OpenAIKeySecretArn=""' in printed
    assert "RunTimeoutSeconds=897" in printed


def test_verified_end_users_need_an_https_issuer_and_audiences():
    jwt = {"issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab12/", "audiences": ["app1", "app2"]}
    parameters = parse_formation({"auth": {"jwt": jwt}}).template_parameters()
    assert parameters["JwtIssuer"] == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab12"
    assert parameters["JwtAudiences"] == "app1,app2"
    assert parse_formation({"auth": {"jwt": {**jwt, "issuer": "http://127.0.0.1:9999"}}}).auth.jwt is not None
    for bad, named in (
        ({"issuer": "http://issuer.example"}, "auth.jwt.issuer"),
        ({"audiences": []}, "auth.jwt.audiences"),
        ({"audiences": ["a,b"]}, "auth.jwt.audiences"),
    ):
        with pytest.raises(ConfigError) as refused:
            parse_formation({"auth": {"jwt": {**jwt, **bad}}})
        assert named in str(refused.value)


@pytest.mark.parametrize(
    ("model", "foundation"),
    [
        ("us.anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
        ("eu.amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
        ("global.anthropic.claude-sonnet-4-20250514-v1:0", "anthropic.claude-sonnet-4-20250514-v1:0"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0"),
    ],
)
def test_a_bedrock_inference_profile_is_allowed_with_the_model_it_routes_to(model, foundation):
    parameters = parse_formation({"llm": {"provider": "bedrock", "model": model}}).template_parameters()
    assert (parameters["BedrockModelId"], parameters["BedrockFoundationModelId"]) == (model, foundation)


@pytest.mark.parametrize(("tracked", "measured"), [(True, True), (False, False)])
def test_track_async_tasks_turns_the_request_metrics_on_or_off(tmp_path, tracked, measured):
    from asyncagents.domain.telemetry import NO_TELEMETRY
    from asyncagents.runtime import Runtime

    formation = tmp_path / "formation.yaml"
    formation.write_text(f"observability:\n  track_async_tasks: {str(tracked).lower()}\n")
    lines: list[str] = []
    container = Runtime({"TABLE_NAME": "requests", "FORMATION_PATH": str(formation), "STACK_NAME": "prod"})
    container.write_metric_line = lines.append  # type: ignore[method-assign]
    container.request_telemetry.emit({"RequestsAccepted": (1, "Count")})
    container.telemetry.emit({"WebhookAttempts": (1, "Count")})  # the other metrics stay on either way
    assert (container.request_telemetry is not NO_TELEMETRY) is measured
    assert len(lines) == (2 if measured else 1) and '"Stack":"prod"' in lines[-1]


def test_a_formation_without_triggers_or_schedules_never_builds_their_models():
    # Every function validates the formation at its cold start: those models (about 14 ms) are for formations
    # that have some. A fresh interpreter, as Lambda's init.
    import subprocess
    import sys

    code = (
        # The built formation.json names both sections, empty
        "import sys, asyncagents.config as c; c.parse_formation({'triggers': {}, 'schedules': {}});"
        "print(sorted(m for m in sys.modules if m.startswith(('asyncagents.formation_sections', "
        "'asyncagents.trigger_definitions', 'asyncagents.schedule_definitions'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    with_schedule = parse_formation({"schedules": {"daily": {"schedule": "0 9 * * *", "message": "report"}}})
    assert "daily" in with_schedule.schedules
