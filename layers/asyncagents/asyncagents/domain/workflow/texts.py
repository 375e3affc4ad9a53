"""Texts and files larger than the services allow: kept in the bucket, referenced from the table."""

from __future__ import annotations

import threading
from typing import Any

from cachetools import LRUCache

from asyncagents.domain.agents import Artifact
from asyncagents.domain.ports import ArtifactSink
from asyncagents.domain.records import RequestRecord

# Texts larger than this live in the bucket; the table keeps a preview and the key (items stop at 400 KB). Chosen by
# cost: every write to an item pays a unit per KB of the whole item, and an answer's item is written at least twice
# more (completed, then its webhook's bookkeeping), so k KB inline cost about 2k write units ($1.25 per million per
# KB) against an S3 PUT and a GET ($5.40 per million): the bucket is cheaper above about 4 KB.
INLINE_TEXT_BYTES = 4 * 1024
PREVIEW_CHARS = 2000


class LargeTexts:
    """Step outputs, answers and produced files, stored where they fit; requests' messages read from where they are
    (``domain.messages``)."""

    def __init__(self, artifacts: ArtifactSink | None) -> None:
        self._artifacts = artifacts
        # A message in the bucket never changes (named by the request's body): read once per container, not by
        # every step; a few kept, on threads (the steps').
        self._messages: LRUCache[str, str] = LRUCache(maxsize=8)
        self._lock = threading.Lock()

    def message(self, record: RequestRecord) -> str:
        """The request's whole message (its record holds a preview when the message is in the bucket)."""
        key = record.prompt_key
        if not key:
            return record.prompt
        if self._artifacts is None:
            raise RuntimeError("the request's message is in the bucket but no artifacts bucket is configured")
        with self._lock:
            known = self._messages.get(key)
        if known is None:
            known = self._artifacts.get(key).decode()
            with self._lock:
                self._messages[key] = known
        return known

    def fields(self, record: RequestRecord, name: str, text: str) -> dict[str, Any]:
        """``{"text": …}``, or for a text too large for the table ``{"text": preview, "text_key": key}``
        with the whole text in the bucket."""
        content = text.encode()
        if len(content) <= INLINE_TEXT_BYTES or self._artifacts is None:
            return {"text": text}
        key = f"texts/{_folder(record)}/{name}"
        self._artifacts.put(key, content, "text/plain; charset=utf-8")
        return {"text": text[:PREVIEW_CHARS], "text_key": key}

    def full_text(self, item: dict[str, Any]) -> str:
        """The whole text of a stored output (``{"text", "text_key"?}``)."""
        if item.get("text_key") and self._artifacts is not None:
            return self._artifacts.get(str(item["text_key"])).decode()
        return str(item.get("text", ""))

    def store_artifacts(self, record: RequestRecord, artifacts: list[Artifact]) -> list[dict[str, Any]]:
        """Put each produced file in the artifacts bucket; the result lists them (URLs are made at read)."""
        if not artifacts:
            return []
        if self._artifacts is None:
            raise RuntimeError("the provider produced files but no artifacts bucket is configured")
        stored = []
        for artifact in artifacts:
            content = artifact.content.encode()
            key = f"artifacts/{_folder(record)}/{artifact.name}"
            self._artifacts.put(key, content, artifact.content_type)
            stored.append(
                {"name": artifact.name, "key": key, "content_type": artifact.content_type, "size": len(content)}
            )
        return stored


def _folder(record: RequestRecord) -> str:
    return f"{record.request_key}/{record.checkpoint_lineage}"
