"""The bucket: input images under ``inputs/``, uploads under ``uploads/``, masks under ``results/``.

Only ``uploads/`` triggers anything; the other prefixes are inert by design. An upload is read whole
and validated, then copied to ``inputs/`` pinned to the ETag that was read, so WaveSpeed is sent
exactly the bytes that were checked, whatever is written to the upload's key later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from maskgate.errors import ImageTooLarge, InvalidImage, ObjectNotFound, UploadChanged
from maskgate.images import MAX_IMAGE_BYTES, ImageInfo, validate_image

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

UPLOAD_PREFIX = "uploads/"
_GONE = ("404", "NoSuchKey", "NotFound")


def upload_key(tenant: str, job_id: str) -> str:
    """The one key a registered upload may land on: chosen by the server, never by the caller."""
    return f"{UPLOAD_PREFIX}{tenant}/{job_id}/image"


def input_key(job_id: str, info: ImageInfo) -> str:
    return f"inputs/{job_id}/image.{info.extension}"


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    metadata: dict[str, str]
    etag: str  # the version that was seen: every later read and copy is conditional on it


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _raise_typed(key: str, exc: ClientError) -> None:
    """Raise what a failed conditional read or copy of an upload means for its job, if it is known."""
    if _code(exc) in ("412", "PreconditionFailed"):
        raise UploadChanged(key) from exc
    if _code(exc) in _GONE:
        raise InvalidImage("the upload was deleted before it could be read") from exc


class Bucket:
    """The objects of the one bucket (``name``), reached through an injected S3 client."""

    def __init__(self, *, bucket: str, client: S3Client, presign_seconds: int = 3600) -> None:
        self.name = bucket
        self._client = client
        self._presign_seconds = presign_seconds

    def put_input(self, job_id: str, data: bytes, info: ImageInfo) -> str:
        """Store a decoded request image; return its key."""
        key = input_key(job_id, info)
        self._client.put_object(Bucket=self.name, Key=key, Body=data, ContentType=info.mime)
        return key

    def put_mask(self, job_id: str, index: int, data: bytes, *, extension: str, content_type: str) -> str:
        """Store one finished mask; return its key."""
        key = f"results/{job_id}/mask_{index}.{extension}"
        self._client.put_object(Bucket=self.name, Key=key, Body=data, ContentType=content_type)
        return key

    def put_result(self, key: str, body: bytes, *, content_type: str = "application/json") -> str:
        """Store one result file (instances.json, the COCO file) under ``results/<job_id>/``."""
        self._client.put_object(Bucket=self.name, Key=key, Body=body, ContentType=content_type)
        return key

    def get_result(self, key: str) -> bytes:
        """The bytes of one result file; ObjectNotFound if it is gone (e.g. expired by the lifecycle)."""
        try:
            found = self._client.get_object(Bucket=self.name, Key=key)
        except ClientError as exc:
            if _code(exc) in _GONE:
                raise ObjectNotFound(f"no object {key}") from exc
            raise
        return found["Body"].read()

    def head(self, key: str) -> StoredObject:
        """Size and user metadata of an object; ObjectNotFound if it is gone."""
        try:
            found = self._client.head_object(Bucket=self.name, Key=key)
        except ClientError as exc:
            if _code(exc) in _GONE:
                raise ObjectNotFound(f"no object {key}") from exc
            raise
        return StoredObject(
            key=key,
            size=found["ContentLength"],
            metadata=found.get("Metadata", {}),
            etag=found["ETag"],
        )

    def validate_upload(self, stored: StoredObject) -> ImageInfo:
        """Read the whole upload as it was at the HEAD (If-Match its ETag) and validate it."""
        if stored.size > MAX_IMAGE_BYTES:
            raise ImageTooLarge(
                f"upload is {stored.size} bytes; the limit is {MAX_IMAGE_BYTES} bytes (20 MB)"
            )
        if stored.size == 0:
            raise InvalidImage("the upload is empty")
        try:
            found = self._client.get_object(Bucket=self.name, Key=stored.key, IfMatch=stored.etag)
        except ClientError as exc:
            _raise_typed(stored.key, exc)
            raise
        # never trust the size header alone: read at most one byte past the limit
        data = found["Body"].read(MAX_IMAGE_BYTES + 1)
        return validate_image(data)

    def pin_input(self, job_id: str, stored: StoredObject, info: ImageInfo) -> str:
        """Copy the validated upload to ``inputs/<job_id>/`` only if it is still the version that was
        read (CopySourceIfMatch); return the copy's key, the one WaveSpeed is sent."""
        key = input_key(job_id, info)
        try:
            self._client.copy_object(
                Bucket=self.name,
                Key=key,
                CopySource={"Bucket": self.name, "Key": stored.key},
                MetadataDirective="REPLACE",
                ContentType=info.mime,
                CopySourceIfMatch=stored.etag,
            )
        except ClientError as exc:
            _raise_typed(stored.key, exc)
            raise
        return key

    def presigned_post(self, key: str, *, content_type: str, seconds: int) -> dict[str, Any]:
        """A browser-style POST for exactly this key and type, at most 20 MB (S3 enforces the policy;
        the upload handler checks size and type again whatever the policy said)."""
        post: dict[str, Any] = self._client.generate_presigned_post(
            Bucket=self.name,
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
            Params={"Bucket": self.name, "Key": key},
            ExpiresIn=seconds or self._presign_seconds,
        )

    def copy_results(self, source_job: str, job_id: str) -> list[str]:
        """Copy every object under ``results/<source_job>/`` to ``results/<job_id>/`` (same names,
        same content type); return the source keys that were found and copied."""
        prefix = f"results/{source_job}/"
        keys: list[str] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
        for key in keys:
            self._client.copy_object(
                Bucket=self.name,
                Key=f"results/{job_id}/{key.removeprefix(prefix)}",
                CopySource={"Bucket": self.name, "Key": key},
            )
        return keys
