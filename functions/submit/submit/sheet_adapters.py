"""Adapters of sample sheets: the sheet and its receipts in S3, the row queue in SQS, and the
pacer that holds Cromwell to at most N submissions per second."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from courier.conventions import OPTION_SAMPLE_SHEET, receipt_key, rows_receipt_key
from courier.errors import ConfigurationError, CourierError
from courier.observability import logger
from courier.storage import ObjectMissing, ObjectStore, ObjectTooLarge
from submit.folder import OPTIONS_NAME, shown
from submit.plan import SubmissionPlan
from submit.service import Submitter
from submit.upload import Upload

_OPTIONS_MAX_BYTES = 1_048_576
_SEND_ATTEMPTS = 3
_BATCH_BYTES = 262_144


class S3SheetFiles:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def named_sheet(self, bucket: str, folder: str) -> str | None:
        """`courier_sample_sheet` of the folder's options.json; None when it names none or cannot
        be read (the sheet's own handling then reports options.json's problem)."""
        try:
            body = self.store.read(bucket, folder + OPTIONS_NAME, max_bytes=_OPTIONS_MAX_BYTES)
            options = json.loads(body)
        except (CourierError, ValueError):
            return None
        named = options.get(OPTION_SAMPLE_SHEET) if isinstance(options, dict) else None
        return named.strip() if isinstance(named, str) and named.strip() else None

    def folder_names(self, bucket: str, folder: str) -> set[str]:
        listing = self.store.list_folder(bucket, folder, max_keys=1000)
        return {name for name in listing.sizes if "/" not in name}

    def read_sheet(self, upload: Upload, max_bytes: int) -> bytes | str:
        try:
            return self.store.read(
                upload.bucket, upload.key, max_bytes=max_bytes, version_id=upload.version_id
            )
        except ObjectTooLarge as exc:
            return (
                f"{shown(upload.name)} is {exc.size:,} bytes; a sample sheet may hold at most {max_bytes:,}"
            )
        except ObjectMissing:
            return f"{shown(upload.name)} was deleted or replaced before it could be read; upload it again"

    def write_receipts(self, bucket: str, sheet_key: str, document: Mapping[str, Any], table: str) -> None:
        self.store.put_text(
            bucket,
            rows_receipt_key(sheet_key),
            table,
            content_type="text/tab-separated-values; charset=utf-8",
        )
        self.store.put_json(bucket, receipt_key(sheet_key), document)


class S3RerunFiles:
    """A rerun.json and its receipt in S3."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def read_text(self, upload: Upload, max_bytes: int) -> bytes | str:
        try:
            return self.store.read(
                upload.bucket, upload.key, max_bytes=max_bytes, version_id=upload.version_id
            )
        except ObjectTooLarge as exc:
            return f"{shown(upload.name)} is {exc.size:,} bytes; a rerun.json holds at most {max_bytes:,}"
        except ObjectMissing:
            return f"{shown(upload.name)} was deleted or replaced before it could be read; upload it again"

    def write_receipt(self, bucket: str, key: str, document: Mapping[str, Any]) -> None:
        self.store.put_json(bucket, key, document)


class RowQueueError(CourierError):
    def __init__(self, queue_url: str, failed: Sequence[Mapping[str, Any]]) -> None:
        self.failed = list(failed)
        detail = "; ".join(
            f"{f.get('Id')}: {f.get('Code')} {f.get('Message', '')}".strip() for f in failed[:5]
        )
        super().__init__(f"{len(failed)} row message(s) could not be queued on {queue_url}: {detail}")


class SqsRowQueue:
    """The rows queue: SendMessageBatch by tens (entries that fail are sent again, then raise),
    and a failed row's visibility delay."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    def send(self, messages: Sequence[Mapping[str, Any]]) -> None:
        if messages and not self.queue_url:
            raise ConfigurationError("SheetSettings", ["SHEET_ROWS_QUEUE_URL is not set"])
        for batch in _batches(messages):
            entries = batch
            for _ in range(_SEND_ATTEMPTS):
                answer = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
                failed = answer.get("Failed") or []
                if not failed:
                    break
                retry = {f["Id"] for f in failed if not f.get("SenderFault")}
                if len(retry) < len(failed):
                    raise RowQueueError(self.queue_url, failed)
                entries = [e for e in entries if e["Id"] in retry]
            else:
                raise RowQueueError(self.queue_url, failed)

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """Best effort: when the delay cannot be set (a replayed row has no receipt handle), the
        row comes back after the queue's visibility timeout instead."""
        try:
            self.client.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except ClientError as exc:
            logger.warning("row delay not set", extra={"error": str(exc)})


def _batches(messages: Sequence[Mapping[str, Any]]) -> list[list[dict[str, str]]]:
    """SendMessageBatch entries: at most ten per call and 256 KiB together."""
    batches: list[list[dict[str, str]]] = []
    size = 0
    for message in messages:
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        length = len(body.encode())
        if not batches or len(batches[-1]) == 10 or size + length > _BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append({"Id": str(len(batches[-1])), "MessageBody": body})
        size += length
    return batches


class Pacer:
    """At most `per_second` calls per second from this process: `wait()` sleeps until the next
    call is allowed. Several invocations run at once (the event source's MaximumConcurrency),
    so each is given its share of the deployment's rate."""

    def __init__(
        self,
        per_second: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.interval = 1.0 / per_second
        self.monotonic = monotonic
        self.sleep = sleep
        self._next = float("-inf")

    def wait(self) -> None:
        now = self.monotonic()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


class PacedSubmitter:
    """A Submitter that waits for the pacer before each call to Cromwell."""

    def __init__(self, inner: Submitter, pacer: Pacer) -> None:
        self.inner = inner
        self.pacer = pacer

    def submit(self, plan: SubmissionPlan) -> str:
        self.pacer.wait()
        return self.inner.submit(plan)
