"""What a run leaves beside its inputs file when it ends: the run report and the receipt brought up
to date.

`<inputs file>.report.html`: the self-contained report `courier report` prints
(`courier.run_report.render_report`), over the run's typed views. `<inputs file>.receipt.json`:
read, merged with the run's final status, end time and the report's key, and written back; every
field it had is kept. Both writes are idempotent (same keys, same merge), so a redelivered ENDED
event writes them again harmlessly. A run with no inputs file (adopted) gets neither.

A failure here never stops the message: `RunArtifacts.write` returns a `ReportLink` that says the
report could not be written (logged, and counted in the `RunReportFailed` metric), and the message
goes out without the link; the receipt still gets the run's end (and keeps the key of a report an
earlier delivery wrote, else `report` is null).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from courier.conventions import receipt_key
from courier.costs import Prices
from courier.ledger.records import RunView, TaskView
from courier.links import s3_object_url
from courier.observability import logger, metrics
from courier.run_report import render_report
from courier.storage import ObjectMissing

REPORT_SUFFIX: Final = ".report.html"
REPORT_CONTENT_TYPE: Final = "text/html; charset=utf-8"
#: A receipt is a few kilobytes; anything far larger is not one Courier wrote.
RECEIPT_MAX_BYTES: Final = 1_048_576
REPORT_FAILED_METRIC: Final = "RunReportFailed"
RECEIPT_FAILED_METRIC: Final = "ReceiptUpdateFailed"


def report_key(inputs_key: str) -> str:
    return inputs_key + REPORT_SUFFIX


class RunTasks(Protocol):
    """The typed reads of a run's tasks (`courier.ledger.views.RunViews`)."""

    def tasks(self, workflow_id: str, attributes: Sequence[str] | None = ...) -> Iterator[TaskView]: ...


class Objects(Protocol):
    """The S3 calls made here (`courier.storage.ObjectStore`)."""

    def read(self, bucket: str, key: str, *, max_bytes: int, version_id: str | None = None) -> bytes: ...
    def put_text(self, bucket: str, key: str, text: str, *, content_type: str) -> None: ...
    def put_json(self, bucket: str, key: str, document: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class ReportLink:
    """Where the run's report is (`key` in `bucket`, `url` its console page), or, when it could
    not be written, `error` (one line, for the message and the log)."""

    bucket: str
    key: str
    url: str | None = None
    error: str | None = None

    @property
    def written(self) -> bool:
        return self.error is None


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, to the second, as the receipt's other times."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def merge_receipt(receipt: Mapping[str, Any], run: RunView, report: str | None) -> dict[str, Any]:
    """`receipt` with the run's end: every field kept, `run_status`, `ended_at` and `report` set."""
    merged = dict(receipt)
    merged["run_status"] = run.status.value if run.status else None
    merged["ended_at"] = iso_utc(run.ended_at) if run.ended_at else None
    merged["report"] = report
    return merged


class RunArtifacts:
    """Writes a run's report and brings its receipt up to date, in the runs bucket `bucket`."""

    def __init__(
        self,
        runs: RunTasks,
        objects: Objects,
        *,
        bucket: str,
        region: str,
        prices: Prices | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.runs = runs
        self.objects = objects
        self.bucket = bucket
        self.region = region
        self.prices = prices
        self.clock = clock

    def write(self, run: RunView) -> ReportLink | None:
        """The report's link, or None when the run has no inputs file in the runs bucket."""
        if not run.inputs_key or (run.source_bucket and run.source_bucket != self.bucket):
            return None
        bucket, key = self.bucket, report_key(run.inputs_key)
        context = {"workflow_id": run.workflow_id, "bucket": bucket, "key": key}
        receipt = self._receipt(run, context)
        link = self._report(run, bucket, key, receipt, context)
        if receipt is not None:
            # A report that could not be written now keeps the one an earlier delivery wrote.
            written = key if link.written else receipt.get("report")
            try:
                self.objects.put_json(
                    bucket, receipt_key(run.inputs_key), merge_receipt(receipt, run, written)
                )
            except Exception:  # the report (or the reason) goes out; the receipt stays as it was
                logger.exception("could not bring the receipt up to date", extra=context)
                metrics.add_metric(name=RECEIPT_FAILED_METRIC, unit=MetricUnit.Count, value=1)
        return link

    def _report(
        self,
        run: RunView,
        bucket: str,
        key: str,
        receipt: Mapping[str, Any] | None,
        context: Mapping[str, str],
    ) -> ReportLink:
        try:
            html = render_report(
                run,
                self.runs.tasks(run.workflow_id),
                generated_at=self.clock(),
                prices=self.prices,
                region=self.region,
                receipt=receipt,
            )
            self.objects.put_text(bucket, key, html, content_type=REPORT_CONTENT_TYPE)
        except Exception as exc:  # the message goes out without the link, and says why
            logger.exception("could not write the run report", extra=dict(context))
            metrics.add_metric(name=REPORT_FAILED_METRIC, unit=MetricUnit.Count, value=1)
            return ReportLink(bucket, key, error=f"could not be written ({type(exc).__name__})")
        return ReportLink(bucket, key, url=s3_object_url(self.region, bucket, key))

    def _receipt(self, run: RunView, context: Mapping[str, str]) -> dict[str, Any] | None:
        """The receipt as it is now; None when there is none or it cannot be read (logged)."""
        assert run.inputs_key is not None  # nosec B101 - checked by the caller
        rkey = receipt_key(run.inputs_key)
        try:
            document = json.loads(self.objects.read(self.bucket, rkey, max_bytes=RECEIPT_MAX_BYTES))
        except ObjectMissing:
            logger.warning("the run has no receipt to bring up to date", extra=dict(context))
            return None
        except Exception:
            logger.exception("could not read the receipt", extra=dict(context))
            metrics.add_metric(name=RECEIPT_FAILED_METRIC, unit=MetricUnit.Count, value=1)
            return None
        if not isinstance(document, dict):
            logger.warning("the receipt is not a JSON object; left as it is", extra=dict(context))
            return None
        return document
