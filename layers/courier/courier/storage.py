"""S3 adapter: read run folders (bounded), write receipts, check that input objects exist."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from courier.errors import CourierError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class ObjectTooLarge(CourierError):
    def __init__(self, bucket: str, key: str, size: int, limit: int) -> None:
        self.bucket, self.key, self.size, self.limit = bucket, key, size, limit
        super().__init__(f"s3://{bucket}/{key} is {size:,} bytes; the limit is {limit:,}")


class ObjectMissing(CourierError):
    def __init__(self, bucket: str, key: str) -> None:
        self.bucket, self.key = bucket, key
        super().__init__(f"s3://{bucket}/{key} does not exist")


class AccessDenied(CourierError):
    def __init__(self, bucket: str, key: str) -> None:
        self.bucket, self.key = bucket, key
        super().__init__(
            f"access to s3://{bucket}/{key} is denied (is the bucket among the data buckets "
            "Courier may read?)"
        )


@dataclass(frozen=True, slots=True)
class FolderListing:
    """The objects directly inside a folder (not in its sub-folders' receipts), by relative path."""

    prefix: str
    sizes: dict[str, int] = field(default_factory=dict)
    truncated: bool = False


_CREATED_ALREADY = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


def _missing(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NoSuchVersion", "NotFound", "NoSuchBucket")


class ObjectStore:
    """Thin S3 adapter. The client is injected so tests pass a moto or stubbed one."""

    def __init__(self, client: S3Client) -> None:
        self.client = client

    def list_folder(self, bucket: str, prefix: str, *, max_keys: int) -> FolderListing:
        """Every object under `prefix` (recursively), up to `max_keys`."""
        sizes: dict[str, int] = {}
        truncated = False
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix) :]
                if not rel or rel.endswith("/"):
                    continue
                if len(sizes) >= max_keys:
                    truncated = True
                    break
                sizes[rel] = int(obj.get("Size", 0))
            if truncated:
                break
        return FolderListing(prefix=prefix, sizes=sizes, truncated=truncated)

    def read(self, bucket: str, key: str, *, max_bytes: int, version_id: str | None = None) -> bytes:
        """Read an object whole, refusing (ObjectTooLarge) anything above `max_bytes`."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Range": f"bytes=0-{max_bytes}"}
        if version_id and version_id != "null":
            kwargs["VersionId"] = version_id
        try:
            resp = self.client.get_object(**kwargs)
        except ClientError as exc:
            if _missing(exc):
                raise ObjectMissing(bucket, key) from exc
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":  # empty object
                return b""
            raise
        body = resp["Body"].read(max_bytes + 1)
        if len(body) > max_bytes:
            total = resp.get("ContentRange", "").rpartition("/")[2]
            size = int(total) if total.isdigit() else len(body)
            raise ObjectTooLarge(bucket, key, size, max_bytes)
        return body

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.client.head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as exc:
            if _missing(exc):
                return False
            if str(exc.response.get("Error", {}).get("Code")) in ("403", "AccessDenied", "Forbidden"):
                raise AccessDenied(bucket, key) from exc
            raise

    def put_json(self, bucket: str, key: str, document: Mapping[str, Any]) -> None:
        body = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False).encode()
        self.put_text(bucket, key, body.decode(), content_type="application/json; charset=utf-8")

    def put_text(self, bucket: str, key: str, text: str, *, content_type: str) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType=content_type)

    def put_text_once(self, bucket: str, key: str, text: str, *, content_type: str) -> str | None:
        """Create the object only if no object has its key (`If-None-Match: *`): its version id
        ("" in an unversioned bucket), or None when it is there already. A second call never
        makes a second version, so an event derived from the upload is never raised twice."""
        try:
            answer = self.client.put_object(
                Bucket=bucket, Key=key, Body=text.encode(), ContentType=content_type, IfNoneMatch="*"
            )
        except ClientError as exc:
            # 412: there already; 409: a concurrent conditional write of the same key won
            if str(exc.response.get("Error", {}).get("Code")) in _CREATED_ALREADY:
                return None
            raise
        return str(answer.get("VersionId") or "")
