"""The bucket: input images under ``inputs/``, uploads under ``uploads/``, masks under ``results/``.

Only ``uploads/`` triggers anything; the other prefixes are inert by design (DESIGN §3, §6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from maskgate.errors import ImageTooLarge, InvalidImage, NotFound
from maskgate.images import MAX_IMAGE_BYTES, SNIFF_BYTES, ImageInfo, inspect_image

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

UPLOAD_PREFIX = "uploads/"


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    metadata: dict[str, str]


class MaskStore:
    """Objects of one bucket, reached through an injected S3 client."""

    def __init__(self, *, bucket: str, client: S3Client, presign_seconds: int = 3600) -> None:
        self.bucket = bucket
        self._client = client
        self._presign_seconds = presign_seconds

    def put_input(self, job_id: str, data: bytes, info: ImageInfo) -> str:
        """Store a decoded request image; return its key."""
        key = f"inputs/{job_id}/image.{info.extension}"
        self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=info.mime)
        return key

    def put_mask(self, job_id: str, index: int, data: bytes, *, extension: str, content_type: str) -> str:
        """Store one finished mask; return its key."""
        key = f"results/{job_id}/mask_{index}.{extension}"
        self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        return key

    def head(self, key: str) -> StoredObject:
        """Size and user metadata of an object; NotFound if it is gone."""
        try:
            found = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise NotFound(f"no object {key}") from exc
            raise
        return StoredObject(key=key, size=found["ContentLength"], metadata=found.get("Metadata", {}))

    def inspect_upload(self, stored: StoredObject) -> ImageInfo:
        """Check an uploaded object is an image within limits, reading only its first bytes."""
        if stored.size > MAX_IMAGE_BYTES:
            raise ImageTooLarge(
                f"upload is {stored.size} bytes; the limit is {MAX_IMAGE_BYTES} bytes (20 MB)"
            )
        if stored.size == 0:
            raise InvalidImage("the upload is empty")
        head = self._client.get_object(
            Bucket=self.bucket, Key=stored.key, Range=f"bytes=0-{SNIFF_BYTES - 1}"
        )["Body"].read()
        return inspect_image(head, total_size=stored.size)

    def presigned_post(self, key: str, *, content_type: str, seconds: int) -> dict[str, Any]:
        """A browser-style POST for exactly this key and type, at most 20 MB (S3 enforces the policy;
        the upload handler checks size and type again whatever the policy said)."""
        post: dict[str, Any] = self._client.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, MAX_IMAGE_BYTES]],
            ExpiresIn=seconds,
        )
        return post

    def presigned_get(self, key: str, *, seconds: int | None = None) -> str:
        """A GET URL for one object (path-style, so the local endpoint resolves too)."""
        return self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=seconds or self._presign_seconds,
        )
