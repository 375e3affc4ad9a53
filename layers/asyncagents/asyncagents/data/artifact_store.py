"""The artifacts bucket (S3): files requests produce, handed out as presigned URLs that expire."""

from __future__ import annotations

from typing import Any


class ArtifactStore:
    def __init__(self, client: Any, bucket: str, *, url_seconds: int = 3600) -> None:
        self._client = client
        self._bucket = bucket
        self._url_seconds = url_seconds

    def put(self, key: str, content: bytes, content_type: str) -> None:
        self._client.put_object(
            Bucket=self._bucket, Key=key, Body=content, ContentType=content_type, ServerSideEncryption="AES256"
        )

    def get(self, key: str) -> bytes:
        return bytes(self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read())

    def url(self, key: str) -> str:
        """A presigned GET URL, valid ``url_seconds``. Computed locally: no AWS call."""
        return str(
            self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=self._url_seconds
            )
        )
