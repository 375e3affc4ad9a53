"""Amazon Bedrock's Converse API through boto3 (the default provider for deployed stacks)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from asyncagents.domain.errors import PermanentProviderError, TransientProviderError
from asyncagents.domain.records import Usage
from asyncagents.providers.chat import Completion

# Bedrock error codes worth retrying (throttling, capacity, 5xx, timeouts); any other code is permanent.
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelTimeoutException",
        "ModelNotReadyException",
        "ServiceQuotaExceededException",
        "TooManyRequestsException",
    }
)


class BedrockConverse:
    """``complete`` over ``bedrock-runtime`` Converse. ``client`` is a boto3 ``bedrock-runtime`` client."""

    def __init__(self, client: Any, model_id: str, *, max_tokens: int = 2048, temperature: float = 0.2) -> None:
        self._client = client
        self._model_id = model_id
        self._inference = {"maxTokens": max_tokens, "temperature": temperature}

    def complete(self, system: str, prompt: str, *, timeout: float | None = None) -> Completion:
        # ``timeout`` is not applied per call: the client's read timeout is fixed per client, and it is the
        # attempt's whole time (``task_timeout``, runtime._model_client).
        try:
            response = self._client.converse(
                modelId=self._model_id,
                system=[{"text": system}],
                messages=[{"role": "user", "content": [{"text": prompt}]}],
                inferenceConfig=self._inference,
            )
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            message = f"Bedrock {code}: {error.response.get('Error', {}).get('Message', '')}"
            if (
                code in TRANSIENT_CODES
                or int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) >= 500
            ):
                raise TransientProviderError(message) from None
            raise PermanentProviderError(message) from None
        except (ConnectTimeoutError, ReadTimeoutError) as error:
            raise TransientProviderError(f"Bedrock timed out: {error}") from None
        except BotoCoreError as error:
            raise TransientProviderError(f"Bedrock unreachable: {error}") from None
        blocks = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(block.get("text", "") for block in blocks)
        usage = response.get("usage", {})
        return Completion(
            text=text,
            usage=Usage(input_tokens=int(usage.get("inputTokens", 0)), output_tokens=int(usage.get("outputTokens", 0))),
        )
