"""Read ``template.yaml`` (CloudFormation short-form tags included) for the pieces the local stack needs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_SHORT_TAGS = (
    "Ref",
    "GetAtt",
    "Sub",
    "Join",
    "If",
    "Equals",
    "Not",
    "Select",
    "Split",
    "FindInMap",
    "GetAZs",
    "ImportValue",
    "Base64",
    "Cidr",
    "And",
    "Or",
    "Condition",
)


class _CfnLoader(yaml.SafeLoader):
    """A safe loader that keeps ``!Ref x`` as ``{"Ref": "x"}`` and ``!GetAtt a.b`` as ``{"Fn::GetAtt": [a, b]}``."""


def _construct(tag: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        if tag == "Ref":
            return {"Ref": value}
        if tag == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        if tag == "Condition":
            return {"Condition": value}
        return {f"Fn::{tag}": value}

    return construct


for _tag in _SHORT_TAGS:
    _CfnLoader.add_constructor(f"!{_tag}", _construct(_tag))


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    timeout: Any
    # Asynchronous invocations (EventInvokeConfig): retries after the first attempt, and the queue (logical id)
    # that receives what still failed.
    async_retries: int = 2
    on_failure: str | None = None


@dataclass(frozen=True)
class EventSource:
    """An ``AWS::Lambda::EventSourceMapping``: which function reads which stream or queue."""

    function: str
    source: str  # the logical id of the table (stream), queue or state machine
    kind: str  # "dynamodb-stream" | "sqs" | "execution-status" (an EventBridge rule) | "schedule" (Scheduler)
    batch_size: int
    statuses: tuple[str, ...] = ()
    max_retries: int | None = None  # a stream mapping's MaximumRetryAttempts (None: until the record expires)
    on_failure: str | None = None  # a stream mapping's on-failure queue (logical id)
    filters: tuple[str, ...] = ()  # a mapping's FilterCriteria patterns (JSON): a record matching none is dropped


@dataclass(frozen=True)
class StackSpec:
    """What the local stack builds: the table, the functions and the state machine."""

    root: Path
    table_properties: dict[str, Any]
    functions: dict[str, FunctionSpec]
    definition_path: Path
    substitutions: dict[str, Any]
    table_logical_id: str
    queues: dict[str, dict[str, Any]]
    secrets: list[str]
    event_sources: list[EventSource]
    buckets: list[str]
    # The JWT API's routes (auth.jwt): route key, and whether the JWT authorizer guards it.
    jwt_routes: tuple[tuple[str, bool], ...] = ()


def load_template(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)


def read_stack(template_path: Path) -> StackSpec:
    template = load_template(template_path)
    root = template_path.parent
    resources: dict[str, Any] = template["Resources"]
    globals_function = template.get("Globals", {}).get("Function", {})
    functions: dict[str, FunctionSpec] = {}
    table_id = ""
    table_properties: dict[str, Any] = {}
    machine: dict[str, Any] = {}
    queues: dict[str, dict[str, Any]] = {}
    secrets: list[str] = []
    event_sources: list[EventSource] = []
    buckets: list[str] = []
    jwt_routes: list[tuple[str, bool]] = []
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        properties = resource.get("Properties", {})
        if kind == "AWS::Serverless::Function":
            for event in properties.get("Events", {}).values():
                pattern = event.get("Properties", {}).get("Pattern", {})
                if event.get("Type") == "ScheduleV2":
                    event_sources.append(
                        EventSource(function=logical_id, source=logical_id, kind="schedule", batch_size=1)
                    )
                if event.get("Type") == "EventBridgeRule" and pattern.get("source") == ["aws.states"]:
                    detail = pattern.get("detail", {})
                    machines = detail.get("stateMachineArn", [{}])
                    event_sources.append(
                        EventSource(
                            function=logical_id,
                            source=str(machines[0].get("Ref", "")) if machines else "",
                            kind="execution-status",
                            batch_size=1,
                            statuses=tuple(detail.get("status", [])),
                        )
                    )
            invoke_config = properties.get("EventInvokeConfig", {})
            functions[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_dir=root / properties.get("CodeUri", globals_function.get("CodeUri", "")),
                handler=properties.get("Handler", globals_function.get("Handler", "app.lambda_handler")),
                timeout=properties.get("Timeout", globals_function.get("Timeout", 3)),
                async_retries=int(invoke_config.get("MaximumRetryAttempts", 2)),
                on_failure=_queue_of(invoke_config.get("DestinationConfig", {}).get("OnFailure", {})),
            )
        elif kind == "AWS::DynamoDB::Table":
            table_id, table_properties = logical_id, properties
        elif kind == "AWS::Serverless::StateMachine":
            machine = properties
        elif kind == "AWS::SQS::Queue":
            queues[logical_id] = properties
        elif kind == "AWS::SecretsManager::Secret":
            secrets.append(logical_id)
        elif kind == "AWS::S3::Bucket":
            buckets.append(logical_id)
        elif kind == "AWS::ApiGatewayV2::Route" and properties.get("ApiId") == {"Ref": "JwtHttpApi"}:
            jwt_routes.append((str(properties["RouteKey"]), properties.get("AuthorizationType") == "JWT"))
        elif kind == "AWS::Lambda::EventSourceMapping":
            source, attribute = properties["EventSourceArn"]["Fn::GetAtt"]
            event_sources.append(
                EventSource(
                    function=properties["FunctionName"]["Ref"],
                    source=source,
                    kind="dynamodb-stream" if attribute == "StreamArn" else "sqs",
                    batch_size=int(properties.get("BatchSize", 10)),
                    max_retries=properties.get("MaximumRetryAttempts"),
                    on_failure=_queue_of(properties.get("DestinationConfig", {}).get("OnFailure", {})),
                    filters=tuple(f["Pattern"] for f in properties.get("FilterCriteria", {}).get("Filters", [])),
                )
            )
    if not table_properties or not machine:
        raise ValueError(f"{template_path}: expected a DynamoDB table and a state machine")
    return StackSpec(
        root=root,
        table_properties=table_properties,
        functions=functions,
        definition_path=root / machine["DefinitionUri"],
        substitutions=machine.get("DefinitionSubstitutions", {}),
        table_logical_id=table_id,
        queues=queues,
        secrets=secrets,
        event_sources=event_sources,
        buckets=buckets,
        jwt_routes=tuple(jwt_routes),
    )


def _queue_of(on_failure: dict[str, Any]) -> str | None:
    """The logical id of the queue an on-failure destination names (``!GetAtt Queue.Arn``)."""
    destination = on_failure.get("Destination")
    if isinstance(destination, dict) and "Fn::GetAtt" in destination:
        return str(destination["Fn::GetAtt"][0])
    return None


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def substitute(definition: str, values: dict[str, str]) -> str:
    """CloudFormation's DefinitionSubstitutions, done locally: every placeholder must have a value."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no substitution for ${{{name}}}")
        return values[name]

    return _PLACEHOLDER.sub(replace, definition)
