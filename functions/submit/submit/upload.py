"""The edge of the submit function: an S3 "Object Created" event (through EventBridge) parsed
into one typed `Upload`, or a precise complaint about what the event lacks."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from pydantic import ValidationError

from courier.errors import InvalidEvent

INPUTS_NAME = "inputs.json"
INPUTS_SUFFIX = ".inputs.json"


@dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded object, as the event describes it."""

    bucket: str
    key: str
    version_id: str | None
    sequencer: str | None
    size: int | None
    requester: str | None
    event_time: str | None

    @property
    def folder(self) -> str:
        """The run folder's prefix, with its trailing slash ("" at the bucket's root)."""
        parent = posixpath.dirname(self.key)
        return f"{parent}/" if parent else ""

    @property
    def name(self) -> str:
        return posixpath.basename(self.key)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def is_inputs_file(key: str) -> bool:
    """`inputs.json` or `<anything>.inputs.json`: each is one run of its folder's workflow."""
    name = posixpath.basename(key)
    return name == INPUTS_NAME or (name.endswith(INPUTS_SUFFIX) and len(name) > len(INPUTS_SUFFIX))


def parse_upload(event: Any) -> Upload:
    """Parse the EventBridge event; raise InvalidEvent naming the missing or malformed fields.

    The bucket and key, when they can be read at all, travel on the exception (`.event` holds
    `(bucket, key)`) so the caller can still leave a receipt beside the file.
    """
    try:
        model = parse(event=event, model=S3EventNotificationEventBridgeModel)
    except ValidationError as exc:
        problems = ", ".join(
            ".".join(str(p) for p in err["loc"]) + f" ({err['msg'].lower()})" for err in exc.errors()
        )
        raise InvalidEvent(
            f"the S3 event for this file is incomplete: {problems}", event=_salvage(event)
        ) from None
    detail = model.detail
    key = detail.object.key
    if not key or key.endswith("/"):
        raise InvalidEvent("the S3 event names a folder, not a file", event=None)
    version = detail.object.version_id
    sequencer = detail.object.sequencer
    if not (version and version != "null") and not sequencer:
        raise InvalidEvent(
            "the S3 event carries neither an object version nor a sequencer, so this upload "
            "cannot be told apart from a re-upload",
            event=(detail.bucket.name, key),
        )
    return Upload(
        bucket=detail.bucket.name,
        key=key,
        version_id=version if version and version != "null" else None,
        sequencer=sequencer,
        size=_size(detail.object.size),
        requester=detail.requester or None,
        event_time=model.time.isoformat() if model.time else None,
    )


def _size(value: float | int | None) -> int | None:
    """The object's size, or None when the event's value is not a finite number."""
    try:
        return int(value) if value is not None else None
    except (OverflowError, ValueError):
        return None


def _salvage(event: Any) -> tuple[str, str] | None:
    """Bucket and key of a malformed event, if both are plain non-empty strings."""
    try:
        detail = event["detail"]
        bucket, key = detail["bucket"]["name"], detail["object"]["key"]
    except (KeyError, TypeError):
        return None
    if isinstance(bucket, str) and isinstance(key, str) and bucket and key and not key.endswith("/"):
        return bucket, key
    return None
