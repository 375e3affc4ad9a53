"""Where a request's message is kept: in its record, or, above 1 KB, in the bucket with a preview in the record.

Chosen by cost. Every write of the record pays a write unit per KB of the whole item, and a request's record is
written about 5 + n times (n steps): a message of k KB kept inline costs about (5 + n)·k units, $1.25 per million
each. The bucket costs one PUT at the accept ($5 per million) and a GET per worker container that reads it ($0.40 per
million): above about 1 KB (0.7 KB for 3 steps) it is the cheaper place, and the record stays small.
"""

from __future__ import annotations

from asyncagents.domain.errors import Unavailable
from asyncagents.domain.ports import ArtifactSink

INLINE_MESSAGE_BYTES = 1024
MESSAGE_PREVIEW_CHARS = 200


def message_fields(sink: ArtifactSink | None, request_key: str, fingerprint: str, message: str) -> dict[str, str]:
    """The record's fields for ``message``: ``{"prompt": message}``, or for a message over 1 KB
    ``{"prompt": preview, "prompt_key": key}`` once the whole of it is in the bucket.

    The object is named by the request and the body's fingerprint: a body that conflicts with an accepted request
    (409) never overwrites that request's message (and a repeat of a request that is still kept does not get here:
    ``Submissions.submit`` answers it from the record). A refused write is ``Unavailable`` (503): nothing recorded.
    """
    if sink is None or not in_bucket(sink, message):
        return {"prompt": message}
    key = f"texts/{request_key}/message-{fingerprint[:32]}"
    try:
        sink.put(key, message.encode(), "text/plain; charset=utf-8")
    except Exception as error:  # the bucket's failure, whatever its kind: nothing was recorded, the client retries
        raise Unavailable("the message could not be stored; try again") from error
    return {"prompt": message[:MESSAGE_PREVIEW_CHARS], "prompt_key": key}


def in_bucket(sink: ArtifactSink | None, message: str) -> bool:
    """Whether ``message`` is kept in the bucket (over 1 KB, and there is a bucket)."""
    return sink is not None and len(message.encode()) > INLINE_MESSAGE_BYTES
