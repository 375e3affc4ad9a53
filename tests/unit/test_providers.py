"""Real providers against recorded protocol exchanges: Bedrock Converse through botocore's Stubber."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from asyncagents.domain.agents import QuestionAndAnswer, StepContext, StepOutput
from asyncagents.domain.errors import PermanentProviderError, TransientProviderError
from asyncagents.domain.plans import PlannedStep, needed_steps, plan_waves
from asyncagents.domain.records import Usage
from asyncagents.providers.bedrock import BedrockConverse
from asyncagents.providers.chat import ChatAgentProvider, Completion, parse_plan, parse_question

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def converse_reply(text: str, tokens_in: int = 11, tokens_out: int = 7) -> dict:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": tokens_in, "outputTokens": tokens_out, "totalTokens": tokens_in + tokens_out},
        "metrics": {"latencyMs": 120},
    }


@pytest.fixture
def bedrock():
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


def test_plan_step_and_finish_over_converse(bedrock):
    client, stubber = bedrock
    plan_json = {
        "steps": [
            {"title": "Find sources", "instruction": "List 3 sources"},
            {"title": "Summarise", "instruction": "Summarise them"},
        ]
    }
    stubber.add_response(
        "converse",
        converse_reply("Here is the plan:\n" + json.dumps(plan_json), 40, 30),
        {
            "modelId": MODEL,
            "system": ANY,
            "messages": [{"role": "user", "content": [{"text": "Research AI trends"}]}],
            "inferenceConfig": {"maxTokens": 512, "temperature": 0.0},
        },
    )
    stubber.add_response("converse", converse_reply("source A, B, C"))
    stubber.add_response("converse", converse_reply("A summary"))
    stubber.add_response("converse", converse_reply("Final answer", 50, 20))
    provider = ChatAgentProvider("bedrock", BedrockConverse(client, MODEL, max_tokens=512, temperature=0.0))

    plan = provider.plan("Research AI trends", max_steps=8)
    assert [s.title for s in plan.steps] == ["Find sources", "Summarise"]
    assert (plan.usage.input_tokens, plan.usage.output_tokens) == (40, 30)
    first = provider.run_step(
        plan.steps[0], StepContext(request_id="r", message="Research AI trends", index=0, total=2)
    )
    second = provider.run_step(
        plan.steps[1],
        StepContext(request_id="r", message="Research AI trends", index=1, total=2, previous_outputs={0: first.text}),
    )
    answer = provider.finish("Research AI trends", [first, second])
    assert answer.text == "Final answer" and answer.usage.output_tokens == 20
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ThrottlingException", 429, TransientProviderError),
        ("ServiceUnavailableException", 503, TransientProviderError),
        ("ModelTimeoutException", 408, TransientProviderError),
        ("InternalServerException", 500, TransientProviderError),
        ("ValidationException", 400, PermanentProviderError),
        ("AccessDeniedException", 403, PermanentProviderError),
        ("ResourceNotFoundException", 404, PermanentProviderError),
    ],
)
def test_bedrock_errors_are_classified_for_the_retry_policy(bedrock, code, status, error):
    client, stubber = bedrock
    stubber.add_client_error("converse", service_error_code=code, service_message="nope", http_status_code=status)
    with pytest.raises(error, match=code):
        BedrockConverse(client, MODEL).complete("system", "hello")


@pytest.mark.parametrize(
    ("text", "titles"),
    [
        ('{"steps": [{"title": "A", "instruction": "do a"}]}', ["A"]),
        (
            'Sure! ```json\n{"steps": [{"title": "A", "instruction": "a"}, {"title": "B", "instruction": "b"}]}\n```',
            ["A", "B"],
        ),
        ("I cannot produce JSON today", ["Answer the request"]),
        ('{"steps": []}', ["Answer the request"]),
        ('{"steps": [{"name": "wrong shape"}]}', ["Answer the request"]),
    ],
)
def test_plans_are_validated_json_or_a_single_step(text, titles):
    assert [s.title for s in parse_plan(text, max_steps=5, message="the request")] == titles


def test_plans_longer_than_allowed_are_merged_into_the_last_step():
    text = json.dumps({"steps": [{"title": f"S{i}", "instruction": f"do {i}"} for i in range(5)]})
    steps = parse_plan(text, max_steps=3, message="m")
    assert [s.title for s in steps] == ["S0", "S1", "S2"]
    assert steps[2].instruction == "do 2\ndo 3\ndo 4"


def test_single_step_answer_needs_no_second_call(bedrock):
    client, _stubber = bedrock  # no responses queued: any call would fail
    provider = ChatAgentProvider("bedrock", BedrockConverse(client, MODEL))
    assert provider.finish("q", [StepOutput(text="only result")]).text == "only result"


def test_the_formation_chooses_the_provider_and_its_settings():
    from asyncagents.config import parse_formation
    from asyncagents.providers import build_provider

    made: list[tuple[str, dict]] = []

    def factory(service, **kwargs):
        made.append((service, kwargs))
        if service == "secretsmanager":

            class Secrets:
                def get_secret_value(self, SecretId):
                    return {"SecretString": "sk-from-secret"}

            return Secrets()
        return boto3.client(service, region_name="us-east-1")

    bedrock = build_provider(
        parse_formation({"llm": {"provider": "bedrock", "model": MODEL, "bedrock": {"region": "eu-west-1"}}}).llm,
        aws_client=factory,
    )
    assert bedrock.name == "bedrock" and made[0] == ("bedrock-runtime", {"region_name": "eu-west-1"})

    openai = build_provider(
        parse_formation(
            {"llm": {"provider": "openai", "model": "gpt-x", "openai": {"api_key_secret_arn": "arn:secret"}}}
        ).llm,
        aws_client=factory,
    )
    assert openai.name == "openai"
    assert openai._model._api_key() == "sk-from-secret"  # type: ignore[attr-defined]
    assert openai._model._api_key() == "sk-from-secret"  # type: ignore[attr-defined]
    assert [service for service, _ in made].count("secretsmanager") == 1  # cached

    params = parse_formation({"llm": {"provider": "bedrock", "model": MODEL}}).template_parameters()
    assert params["BedrockModelId"] == MODEL and params["OpenAIKeySecretArn"] == ""


def test_dependencies_become_waves_and_each_step_sees_what_it_needs():
    text = json.dumps(
        {
            "steps": [
                {"title": "Sources", "instruction": "a", "depends_on": []},
                {"title": "Prices", "instruction": "b", "depends_on": []},
                {"title": "Compare", "instruction": "c", "depends_on": [1, 2]},
                {"title": "Chart", "instruction": "d", "depends_on": [2, 3, 4, 9]},  # itself and later: dropped
                {"title": "Write", "instruction": "e"},  # absent: after every earlier step
            ]
        }
    )
    steps = parse_plan(text, max_steps=8, message="m")
    assert [s.depends_on for s in steps] == [[], [], [0, 1], [1, 2], None]
    assert steps[4].dependencies(4) == [0, 1, 2, 3]  # unsaid: after every earlier step
    assert plan_waves(steps) == [[0, 1], [2], [3], [4]]
    assert needed_steps(steps, 3) == [0, 1, 2]  # Chart needs Compare, which needed Sources and Prices
    assert needed_steps(steps, 1) == []
    # A dependency on a later step can never deadlock: it is ignored
    loop = [
        PlannedStep(title="x", instruction="x", depends_on=[1]),
        PlannedStep(title="y", instruction="y", depends_on=[]),
    ]
    assert plan_waves(loop) == [[0, 1]]


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ('{"clarification_question": "Which city?"}', "Which city?"),
        ('```json\n{"clarification_question": "Which year?"}\n```', "Which year?"),
        ('{"clarification_question": ""}', None),
        ('{"clarification_question": "x", "steps": []}', None),
        ("The answer mentions clarification_question but is prose.", None),
    ],
)
def test_only_an_exact_question_object_is_a_question(text, question):
    assert parse_question(text) == question


class ScriptedModel:
    """A chat model that answers from a script and remembers the system prompts it was given."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.systems: list[str] = []
        self.prompts: list[str] = []

    def complete(self, system: str, prompt: str, *, timeout: float | None = None) -> Completion:
        self.systems.append(system)
        self.prompts.append(prompt)
        return Completion(text=self.answers.pop(0), usage=Usage(input_tokens=10, output_tokens=5))


def test_a_chat_model_may_ask_only_when_allowed_and_sees_the_answers():
    asking = '{"clarification_question": "Which market?"}'
    model = ScriptedModel(asking, asking, '{"steps": [{"title": "A", "instruction": "a"}]}', "done")
    provider = ChatAgentProvider("openai", model)

    assert provider.plan("grow sales", max_steps=3, may_ask=True).clarification_question == "Which market?"
    assert "clarification_question" in model.systems[0]
    # Not allowed to ask (limit reached): the same answer is not taken as a question
    not_allowed = provider.plan("grow sales", max_steps=3, may_ask=False)
    assert not_allowed.clarification_question is None and "clarification_question" not in model.systems[1]

    replanned = provider.plan(
        "grow sales", max_steps=3, clarifications=[QuestionAndAnswer(question="Which market?", answer="Japan")]
    )
    assert [s.title for s in replanned.steps] == ["A"]
    assert "Q: Which market?\nA: Japan" in model.prompts[2]
    context = StepContext(
        request_id="r",
        message="grow sales",
        index=0,
        total=1,
        clarifications=[QuestionAndAnswer(question="Budget?", answer=None)],
    )
    assert provider.run_step(replanned.steps[0], context).text == "done"
    assert "A: (no answer: make a reasonable assumption and say so)" in model.prompts[3]
