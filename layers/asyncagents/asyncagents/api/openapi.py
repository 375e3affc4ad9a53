"""The OpenAPI 3.1 document of the HTTP API, built from the same pydantic models that validate requests."""

from __future__ import annotations

from typing import Any

from asyncagents.api.schemas import ChatRequest, ClarificationAnswer

_ERROR = {"$ref": "#/components/schemas/Error"}


def _responses(*statuses: int, ok: dict[str, Any] | None = None) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for status in statuses:
        if status < 300:
            answers[str(status)] = {
                "description": "Success",
                "content": {"application/json": {"schema": ok or {}}},
            }
        else:
            answers[str(status)] = {
                "description": "Error",
                "content": {"application/json": {"schema": _ERROR}},
            }
    return answers


def build_openapi() -> dict[str, Any]:
    client_key: list[dict[str, list[str]]] = [{"clientKey": []}]
    request_id = {"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}
    status_schema = {"$ref": "#/components/schemas/RequestStatus"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "asyncagents",
            "version": "1",
            "description": "Durable asynchronous agent requests.",
        },
        "paths": {
            "/v1/chat": {
                "post": {
                    "summary": "Submit a request (sync or async)",
                    "security": client_key,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatRequest"}}},
                    },
                    "responses": _responses(200, 202, 400, 401, 409, 413, 422, ok=status_schema),
                }
            },
            "/v1/requests": {
                "get": {
                    "summary": "List the caller's requests, newest first",
                    "security": client_key,
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                        },
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                        {"name": "status", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": _responses(200, 400, 401, 422),
                }
            },
            "/v1/requests/{request_id}": {
                "get": {
                    "summary": "Status, progress and result of a request",
                    "security": client_key,
                    "parameters": [request_id],
                    "responses": _responses(200, 401, 404, ok=status_schema),
                },
                "delete": {
                    "summary": "Cancel a request",
                    "security": client_key,
                    "parameters": [request_id],
                    "responses": _responses(200, 401, 404, 409),
                },
            },
            "/v1/requests/{request_id}/clarification": {
                "post": {
                    "summary": "Answer the question a request is waiting on, and resume it",
                    "security": client_key,
                    "parameters": [request_id],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/ClarificationAnswer"}}
                        },
                    },
                    "responses": _responses(202, 400, 401, 404, 409, 413, 422, ok=status_schema),
                }
            },
            "/v1/health": {"get": {"summary": "Liveness", "responses": _responses(200)}},
        },
        "components": {
            "securitySchemes": {
                "clientKey": {"type": "apiKey", "in": "header", "name": "X-Muxi-Client-Key"},
                "adminKey": {"type": "apiKey", "in": "header", "name": "X-Muxi-Admin-Key"},
            },
            "schemas": {
                "ChatRequest": ChatRequest.model_json_schema(by_alias=True),
                "ClarificationAnswer": ClarificationAnswer.model_json_schema(),
                "RequestStatus": {
                    "type": "object",
                    "required": ["request_id", "status"],
                    "properties": {
                        "request_id": {"type": "string"},
                        "status": {
                            "type": "string",
                            "enum": [
                                "pending",
                                "processing",
                                "awaiting_clarification",
                                "completed",
                                "failed",
                                "cancelled",
                            ],
                        },
                        "progress": {"type": "integer"},
                        "current_step": {"type": ["string", "null"]},
                        "total_steps": {"type": "integer"},
                        "completed_steps": {"type": "integer"},
                        "message": {"type": "string"},
                        "result": {"type": "object"},
                        "error": {"type": "object"},
                        "duration_ms": {"type": "integer"},
                        "delivery": {"type": "string", "enum": ["polling", "webhook"]},
                        "poll_url": {"type": "string"},
                        "clarification": {
                            "type": "object",
                            "description": "The open question, while awaiting_clarification.",
                            "properties": {
                                "clarification_request_id": {"type": "string"},
                                "question": {"type": "string"},
                                "step": {"type": ["string", "null"]},
                                "asked_at": {"type": "string"},
                            },
                        },
                        "clarification_question": {"type": "string"},
                        "clarification_request_id": {"type": "string"},
                        "clarifications": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "object"},
                    },
                },
            },
        },
    }
