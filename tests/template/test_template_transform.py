"""Assertions on the CloudFormation that samtranslator produces from template.yaml (no AWS calls)."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any

import pytest

from .helpers import FUNCTIONS, REPO_ROOT, asl_placeholders

pytestmark = pytest.mark.template


def _resources(cfn: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in cfn["Resources"].items() if r["Type"] == type_}


def test_transform_produces_plain_cloudformation(cfn: dict[str, Any]) -> None:
    assert "Transform" not in cfn
    assert not [n for n, r in cfn["Resources"].items() if r["Type"].startswith("AWS::Serverless::")]


def test_state_machine_is_standard_with_every_substitution(cfn: dict[str, Any]) -> None:
    machines = _resources(cfn, "AWS::StepFunctions::StateMachine")
    assert list(machines) == ["RequestWorkflow"]
    props = machines["RequestWorkflow"]["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert "DefinitionS3Location" in props
    substitutions = props["DefinitionSubstitutions"]
    placeholders = asl_placeholders()
    assert placeholders, "no ${...} placeholders found in the ASL file"
    assert set(substitutions) == placeholders, (
        f"missing substitutions: {sorted(placeholders - set(substitutions))}; "
        f"unused substitutions: {sorted(set(substitutions) - placeholders)}"
    )


def test_requests_table(cfn: dict[str, Any]) -> None:
    table = cfn["Resources"]["RequestsTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table.get("DeletionPolicy") == "Retain"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    indexes = {gsi["IndexName"]: gsi for gsi in props["GlobalSecondaryIndexes"]}
    assert "ByOwner" in indexes
    assert indexes["ByOwner"]["KeySchema"] == [
        {"AttributeName": "owner", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    attribute_types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert attribute_types["owner"] == "S" and attribute_types["created_at"] == "S"
    # The sweeper's sparse index of unfinished requests: keys only, so progress writes never touch it
    assert indexes["Unfinished"]["KeySchema"] == [
        {"AttributeName": "open_shard", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert indexes["Unfinished"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    # The request list's: keys only too, so no write after a request's creation (its status changes) touches it
    assert indexes["RequestKeysByOwner"]["KeySchema"] == [
        {"AttributeName": "listed_for", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert indexes["RequestKeysByOwner"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_what_stack_deletion_or_replacement_keeps(cfn: dict[str, Any]) -> None:
    # The records, the signing secret (receivers hold it) and the files are kept, whatever happens to the stack
    for name in ("RequestsTable", "WebhookSigningSecret", "TriggerSecrets", "ArtifactsBucket"):
        resource = cfn["Resources"][name]
        assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == ("Retain", "Retain"), name


def test_nothing_that_fails_for_good_is_dropped_silently(cfn: dict[str, Any]) -> None:
    resources = cfn["Resources"]
    # Every asynchronously invoked function ends in an on-failure destination after bounded retries
    for function in ("ReconcileFunction", "SweeperFunction"):
        configs = [
            r["Properties"]
            for r in _resources(cfn, "AWS::Lambda::EventInvokeConfig").values()
            if r["Properties"]["FunctionName"] == {"Ref": function}
        ]
        assert len(configs) == 1, function
        assert configs[0]["MaximumRetryAttempts"] <= 2
        assert configs[0]["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": ["FailedInvocationsQueue", "Arn"]
        }
    # The stream mapping retries a bounded number of times, halving batches, then hands the record over
    stream = resources["NotifyStatusChanges"]["Properties"]
    assert stream["BisectBatchOnFunctionError"] is True and 0 < stream["MaximumRetryAttempts"] <= 10
    assert stream["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["FailedInvocationsQueue", "Arn"]}
    # Every dead-letter queue (ours and the ones SAM makes for event sources) has an alarm
    queues = set(_resources(cfn, "AWS::SQS::Queue")) - {"WebhookQueue"}
    watched = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in _resources(cfn, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    assert queues == watched, queues ^ watched
    sweeper = [
        a
        for a in _resources(cfn, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "SweeperRepairs"
    ]
    assert len(sweeper) == 1


def test_every_function_is_python312_arm64_with_a_retained_log_group(cfn: dict[str, Any]) -> None:
    functions = _resources(cfn, "AWS::Lambda::Function")
    assert set(functions) == set(FUNCTIONS)
    (layer,) = _resources(cfn, "AWS::Lambda::LayerVersion")  # SAM renames it AsyncAgentsLayer<hash>
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.12", name
        assert props["Architectures"] == ["arm64"], name
        folder = props["Handler"].removesuffix(".app.lambda_handler")
        assert (REPO_ROOT / "functions" / folder / "app.py").is_file(), f"{name}: no handler for {props['Handler']}"
        assert props.get("Layers") == [{"Ref": layer}], f"{name} does not use the asyncagents layer"
        log_group_ref = props.get("LoggingConfig", {}).get("LogGroup")
        assert isinstance(log_group_ref, dict) and "Ref" in log_group_ref, f"{name} has no LoggingConfig.LogGroup"
        log_group = cfn["Resources"][log_group_ref["Ref"]]
        assert log_group["Type"] == "AWS::Logs::LogGroup", name
        assert "RetentionInDays" in log_group["Properties"], f"{name}'s log group keeps logs forever"


def test_layer_is_arm64_python312(cfn: dict[str, Any]) -> None:
    layers = _resources(cfn, "AWS::Lambda::LayerVersion")
    assert len(layers) == 1
    (layer,) = layers.values()
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def _statements(cfn: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in cfn["Resources"].items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                if "Fn::If" in policy:  # a conditional policy (model access): check the granted branch
                    policy = policy["Fn::If"][1]
                documents.append(policy["PolicyDocument"])
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props["PolicyDocument"])
        for document in documents:
            statements = document["Statement"]
            for statement in statements if isinstance(statements, list) else [statements]:
                yield name, statement


# Actions that take no resource but "*" (the service authorization reference lists no resource type for them).
NO_RESOURCE_LEVEL = {
    "cloudwatch:GetMetricData",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
}


def test_no_iam_statement_grants_every_resource(cfn: dict[str, Any]) -> None:
    """Only actions that take no resource at all are granted on "*" (and nothing else is in those statements)."""
    statements = list(_statements(cfn))
    assert statements, "no inline IAM statements found (the transform changed shape?)"
    wildcard = []
    for name, statement in statements:
        resources = statement.get("Resource", [])
        actions = statement.get("Action", [])
        actions = set(actions if isinstance(actions, list) else [actions])
        for resource in resources if isinstance(resources, list) else [resources]:
            if resource == "*" and not actions <= NO_RESOURCE_LEVEL:
                wildcard.append((name, statement.get("Sid"), statement.get("Action")))
    assert not wildcard, f"IAM statements with Resource '*': {wildcard}"


def test_the_api_reads_exactly_the_trigger_secrets(cfn: dict[str, Any]) -> None:
    # The stack's own TriggerSecrets always; secrets of yours only when the formation's triggers name some.
    reads = [s for name, s in _statements(cfn) if name == "ApiFunctionRole" and "secretsmanager" in str(s["Action"])]
    assert {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": {"Ref": "TriggerSecrets"}} in [
        {k: v for k, v in s.items() if k != "Sid"} for s in reads
    ]
    policies = cfn["Resources"]["ApiFunctionRole"]["Properties"]["Policies"]
    own = [p for p in policies if "UsesOwnTriggerSecrets" in str(p)]
    assert len(own) == 1 and "TriggerSecretArns" in str(own[0])
    api = cfn["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert api["TRIGGER_SECRETS_ARN"] == {"Ref": "TriggerSecrets"}


def test_schedules_run_with_a_role_only_the_scheduler_can_take(cfn: dict[str, Any]) -> None:
    role = cfn["Resources"]["SchedulerRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    granted = {s["Action"]: s["Resource"] for s in role["Policies"][0]["PolicyDocument"]["Statement"]}
    assert granted == {
        "lambda:InvokeFunction": {"Fn::GetAtt": ["RunScheduleFunction", "Arn"]},
        "sqs:SendMessage": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]},
    }
    # The API may hand the role to EventBridge Scheduler only, and manage schedules of the stack's group only
    api = [s for name, s in _statements(cfn) if name == "ApiFunctionRole"]
    passing = next(s for s in api if s["Action"] == "iam:PassRole")
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    managing = next(s for s in api if "scheduler:CreateSchedule" in s["Action"])
    assert "schedule/${ScheduleGroup}/*" in str(managing["Resource"])


def test_roles_attach_only_the_basic_execution_and_tracing_policies(cfn: dict[str, Any]) -> None:
    for name, role in _resources(cfn, "AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            assert any(managed in str(arn) for managed in ("AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess")), (
                f"{name} attaches {arn}"
            )


def test_outputs_have_descriptions(cfn: dict[str, Any]) -> None:
    outputs = cfn["Outputs"]
    for key in ("ApiUrl", "RequestsTableName", "StateMachineArn"):
        assert key in outputs, key
        assert outputs[key].get("Description", "").strip(), f"output {key} has no description"


# What each function's code calls (data layer methods → AWS actions); IAM must grant at least these.
NEEDED_ACTIONS = {
    "ApiFunction": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
                    "states:StartExecution", "states:StopExecution", "states:SendTaskSuccess",
                    "states:SendTaskFailure", "s3:GetObject", "secretsmanager:GetSecretValue",
                    "dynamodb:DeleteItem", "scheduler:CreateSchedule", "scheduler:UpdateSchedule",
                    "scheduler:DeleteSchedule", "iam:PassRole", "dynamodb:BatchWriteItem", "s3:PutObject"},
    "RunFunction": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
                    "s3:PutObject", "s3:GetObject"},
    "MarkFailedFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
    "ClarifyFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
    "NotifyFunction": {"sqs:SendMessage", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:UpdateItem"},
    "WebhookSenderFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem", "sqs:ChangeMessageVisibility",
                              "sqs:SendMessage", "secretsmanager:GetSecretValue", "s3:GetObject", "sns:Publish"},
    "ReconcileFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem", "sqs:SendMessage"},
    "SweeperFunction": {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem", "states:DescribeExecution",
                        "states:StartExecution", "sqs:SendMessage"},
    "RunScheduleFunction": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                            "states:StartExecution", "sqs:SendMessage", "s3:PutObject"},
}  # fmt: skip


def test_each_function_may_do_what_its_code_does(cfn: dict[str, Any]) -> None:
    for function, needed in NEEDED_ACTIONS.items():
        granted: set[str] = set()
        for name, statement in _statements(cfn):
            if name == f"{function}Role" and statement.get("Effect") == "Allow":
                actions = statement.get("Action", [])
                granted |= set(actions if isinstance(actions, list) else [actions])
        missing = {action for action in needed if not any(fnmatch.fnmatch(action, grant) for grant in granted)}
        assert not missing, f"{function} lacks {sorted(missing)}"


def test_the_bucket_keeps_objects_as_long_as_the_formation_says(cfn: dict[str, Any]) -> None:
    from asyncagents.config import parse_formation

    # The lifecycle comes from the formation (make params): objects outlive the longest request, its result's
    # retention and a redrive's run, then the webhook's delivery window
    [rule] = cfn["Resources"]["ArtifactsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "ArtifactsExpirationDays"}
    longest = parse_formation(
        {
            "overlord": {"workflow": {"timeouts": {"workflow_timeout": 365 * 86_400}}},
            "async": {"result_retention_seconds": 30 * 86_400},
        }
    )
    days = int(longest.template_parameters()["ArtifactsExpirationDays"])
    parameter = cfn["Parameters"]["ArtifactsExpirationDays"]
    assert days == 18 + 365 + 30 + 365 and int(parameter["MinValue"]) <= days <= int(parameter["MaxValue"])


def test_an_upgrade_updates_the_workers_before_the_functions_that_accept_requests(cfn: dict[str, Any]) -> None:
    # A new release's API records requests the previous release's workers could misread (a message in the bucket)
    for function in ("ApiFunction", "RunScheduleFunction"):
        depends = cfn["Resources"][function].get("DependsOn", [])
        workers = {"RunFunction", "NotifyFunction", "WebhookSenderFunction"}  # each reads what the API records
        assert workers <= set(depends if isinstance(depends, list) else [depends])


def test_functions_that_accept_requests_write_only_messages_to_the_bucket(cfn: dict[str, Any]) -> None:
    # The API and the schedules' target keep a message over 1 KB in the bucket: they may write those objects only
    for function in ("ApiFunction", "RunScheduleFunction"):
        writes = [
            statement
            for name, statement in _statements(cfn)
            if name == f"{function}Role" and "s3:PutObject" in str(statement.get("Action"))
        ]
        assert len(writes) == 1, writes
        assert writes[0]["Action"] == "s3:PutObject"
        assert writes[0]["Resource"] == {"Fn::Sub": "${ArtifactsBucket.Arn}/texts/*/message-*"}


def test_reserved_concurrency_comes_from_the_formation_when_set(cfn: dict[str, Any]) -> None:
    """The API and the recovery functions may have concurrency of their own (limits.*), so that a flood of work
    cannot starve them; unset, nothing is reserved (a new account's limit leaves nothing to reserve)."""
    from asyncagents.config import parse_formation

    functions = _resources(cfn, "AWS::Lambda::Function")
    reserved = {
        name: function["Properties"]["ReservedConcurrentExecutions"]
        for name, function in functions.items()
        if "ReservedConcurrentExecutions" in function["Properties"]
    }
    recovery = {
        "Fn::If": ["ReservesRecoveryConcurrency", {"Ref": "RecoveryReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert reserved == {
        "ApiFunction": {
            "Fn::If": ["ReservesApiConcurrency", {"Ref": "ApiReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
        },
        "SweeperFunction": recovery,
        "ReconcileFunction": recovery,
        "MarkFailedFunction": recovery,
    }
    assert cfn["Conditions"]["ReservesApiConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ApiReservedConcurrency"}, ""]}]
    }
    parameters = parse_formation({"limits": {"api_reserved_concurrency": 50, "recovery_reserved_concurrency": 2}})
    assert parameters.template_parameters()["ApiReservedConcurrency"] == "50"
    assert parameters.template_parameters()["RecoveryReservedConcurrency"] == "2"
    assert parse_formation({}).template_parameters()["ApiReservedConcurrency"] == ""


def test_every_request_that_ends_reaches_the_notifier_and_nothing_else_does(cfn: dict[str, Any]) -> None:
    """The notifier frees the slot of each request that ends (domain.limits) and sends its webhook: its stream
    filter passes every terminal change, webhook or not, and a wait for an answer; not the bookkeeping writes to an
    ended request (its webhook's status), which would invoke it for nothing (judged by moto's pattern matcher, the
    one the local stack applies)."""
    import json

    from moto.events.models import EventPattern

    mapping = _resources(cfn, "AWS::Lambda::EventSourceMapping")["NotifyStatusChanges"]["Properties"]
    patterns = [EventPattern.load(rule["Pattern"]) for rule in mapping["FilterCriteria"]["Filters"]]

    def passes(old: str | None, new: str, sk: str = "REQUEST", event: str = "MODIFY") -> bool:
        images = {"NewImage": {"sk": {"S": sk}, "status": {"S": new}}}
        if old is not None:
            images["OldImage"] = {"sk": {"S": sk}, "status": {"S": old}}
        record = json.loads(json.dumps({"eventName": event, "dynamodb": images}))
        return any(pattern.matches_event(record) for pattern in patterns)

    for old in ("pending", "processing", "awaiting_clarification"):
        for ended in ("completed", "failed", "cancelled"):
            assert passes(old, ended), (old, ended)
    assert passes("processing", "awaiting_clarification")
    assert passes("awaiting_clarification", "awaiting_clarification")  # another question while waiting
    for ended in ("completed", "failed", "cancelled"):
        assert not passes(ended, ended), ended  # the webhook's bookkeeping on an ended request
    assert not passes("pending", "processing") and not passes("processing", "processing")
    assert not passes(None, "pending", event="INSERT")
    assert not passes("processing", "completed", sk="STEP#lineage#0001")


def test_the_jwt_api_guards_exactly_the_client_routes() -> None:
    """With auth.jwt, the JWT API's authorizer guards every route a client key serves, and no admin route is on
    it (the local stack reads the same routes from the template)."""
    import re

    from asyncagents.api import app as api
    from asyncagents.local.jwt_api import JwtRoutes
    from asyncagents.local.template import read_stack
    from tests.stack_fixture import ROOT

    routes = JwtRoutes(read_stack(ROOT / "template.yaml").jwt_routes)
    declared = [(method, pattern.pattern, kind) for method, pattern, kind in api.policy._rules]
    assert sum(kind == "client" for _, _, kind in declared) >= 8

    def example(pattern: str) -> str:  # a path the route's pattern matches
        return re.sub(r"\[\^/\]\+", "x", pattern).strip("^$").replace("/?", "").replace("\\", "")

    for method, pattern, kind in declared:
        matched = routes.match(method, example(pattern))
        if kind == "client":
            assert matched is not None and matched[2], f"{method} {pattern} is not guarded on the JWT API"
        if kind == "admin":
            assert matched is None, f"{method} {pattern} (admin) is on the JWT API"
    assert routes.match("GET", "/v1/health") == ("GET /v1/health", {}, False)
    assert routes.match("POST", "/v1/triggers/github") is None  # providers fire on the main API


def test_the_model_steps_may_invoke_the_configured_model_or_profile_and_nothing_else(cfn: dict[str, Any]) -> None:
    """A cross-region inference profile needs its model in each region it routes to: that one model, in any
    region, and the profile; the one function that calls the model has exactly that."""
    functions = {"RunFunction"}
    roles = {name.removesuffix("Role") for name in _resources(cfn, "AWS::IAM::Role")}
    assert functions <= roles
    for role_name, role in _resources(cfn, "AWS::IAM::Role").items():
        text = json.dumps(role["Properties"].get("Policies", []))
        if role_name.removesuffix("Role") in functions:
            assert "bedrock:*::foundation-model/${BedrockFoundationModelId}" in text, role_name
            assert "bedrock:*:${AWS::AccountId}:inference-profile/${BedrockModelId}" in text, role_name
        else:
            assert "bedrock:" not in text, role_name


def test_the_notifier_and_the_sender_may_touch_only_their_own_items(cfn: dict[str, Any]) -> None:
    """``dynamodb:LeadingKeys``: the notifier writes only slot pools, the webhook sender reads and writes only
    request records, reads keys' webhook secrets, and marks the notices it sent (key formats: ``data.table_keys``)."""
    from asyncagents.data.table_keys import api_key_id_key, request_item_key, slot_pool_key
    from asyncagents.domain.limits import active_pool

    def leading_keys(role: str) -> list[tuple[set[str], list[str]]]:
        found = []
        for name, statement in _statements(cfn):
            actions = statement.get("Action", [])
            actions = set(actions if isinstance(actions, list) else [actions])
            if name == role and any(action.startswith("dynamodb:") and "Item" in action for action in actions):
                condition = statement.get("Condition", {}).get("ForAllValues:StringLike", {})
                found.append((actions, condition.get("dynamodb:LeadingKeys")))
        return found

    ((notifier_actions, notifier_keys),) = leading_keys("NotifyFunctionRole")
    assert notifier_actions == {"dynamodb:UpdateItem"}
    assert [fnmatch.fnmatch(slot_pool_key(active_pool("key_1"))["pk"]["S"], k) for k in notifier_keys] == [True]
    (_, sender_keys), (marks_actions, marks_keys) = leading_keys("WebhookSenderFunctionRole")
    assert (marks_actions, marks_keys) == ({"dynamodb:PutItem", "dynamodb:DeleteItem"}, ["NOTICE#*"])  # claims
    for key in (request_item_key("a" * 32), api_key_id_key("key_0123456789abcdef")):
        assert any(fnmatch.fnmatch(key["pk"]["S"], pattern) for pattern in sender_keys), key
    assert not any(fnmatch.fnmatch(slot_pool_key("sync-waits")["pk"]["S"], pattern) for pattern in sender_keys)


def test_every_statement_on_the_table_names_the_item_types_it_is_for(cfn: dict[str, Any]) -> None:
    """Each role's statements on the table itself carry a ``dynamodb:LeadingKeys`` condition (its indexes hold
    no secrets and are queried by partition; ``tests/template/test_table_permissions.py`` has what each allows)."""
    table = {"Fn::GetAtt": ["RequestsTable", "Arn"]}
    unconditioned = []
    on_table = 0
    for name, statement in _statements(cfn):
        resources = statement.get("Resource", [])
        if table not in (resources if isinstance(resources, list) else [resources]):
            continue
        on_table += 1
        condition = statement.get("Condition", {})
        if not any("dynamodb:LeadingKeys" in tests for tests in condition.values()):
            unconditioned.append((name, statement.get("Sid")))
    assert on_table >= 11, on_table
    assert not unconditioned, f"statements on the whole table: {unconditioned}"


def test_the_api_is_invoked_through_its_published_alias_where_snapstart_can_apply(cfn: dict[str, Any]) -> None:
    """api.snapstart: SnapStart applies to published versions only, so both APIs invoke the alias "live" that each
    deploy moves to its new version; SnapStart itself follows the formation (off unless chosen)."""
    resources = cfn["Resources"]
    function = resources["ApiFunction"]["Properties"]
    assert function["SnapStart"] == {"ApplyOn": {"Fn::If": ["SnapStartsApi", "PublishedVersions", "None"]}}
    aliases = {name for name, r in resources.items() if r["Type"] == "AWS::Lambda::Alias"}
    assert aliases == {"ApiFunctionAliaslive"}
    alias = {"Ref": "ApiFunctionAliaslive"}
    assert resources["JwtApiIntegration"]["Properties"]["IntegrationUri"] == alias
    assert resources["JwtApiInvokes"]["Properties"]["FunctionName"] == alias
    integrations = [
        json.dumps(r["Properties"]) for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api"
    ] + [json.dumps(r["Properties"]) for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    # No API reaches the unpublished function: every invoke permission and integration names the alias.
    assert not any('"Fn::GetAtt": ["ApiFunction", "Arn"]' in text for text in integrations)
