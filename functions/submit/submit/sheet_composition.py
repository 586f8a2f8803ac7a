"""Sample sheets wired to their adapters: the sheet service (submit function) and the row service
(rows function). Both reuse the inputs-file service's own composition (`submit.composition`):
the rows are submitted by a `SubmitService` whose folder, receipt sink and Cromwell port are the
row's."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from courier import clients
from courier.ledger import RunLedger
from courier.ledger.sheets import SheetLedger
from courier.ledger.views import RunViews
from courier.settings import load_settings
from courier.storage import ObjectStore
from submit.adapters import S3Folders
from submit.rerun import RerunService, sheet_rows_of
from submit.service import FolderSource, Membership, ReceiptSink, SubmitService, Submitter
from submit.sheet_adapters import PacedSubmitter, Pacer, S3RerunFiles, S3SheetFiles, SqsRowQueue
from submit.sheet_service import RowService, SheetOptions, SheetService
from submit.sheet_settings import SheetSettings


def _options(settings: SheetSettings, base: SubmitService) -> SheetOptions:
    return SheetOptions(
        max_rows=settings.max_sheet_rows,
        wdl_wait_seconds=base.options.wdl_wait_seconds,
        poll_seconds=base.options.poll_seconds,
    )


def member_services(
    base: SubmitService, cromwell: Submitter
) -> Callable[[FolderSource, ReceiptSink, Membership], SubmitService]:
    """Inputs-file services for the runs of a batch (a sheet's rows, a re-run's runs): the base
    service's ports, with the run's folder, receipt sink, batch and Cromwell port."""

    def make_service(folders: FolderSource, verdicts: ReceiptSink, member: Membership) -> SubmitService:
        return SubmitService(
            folders=folders,
            cromwell=cromwell,
            ledger=base.ledger,
            receipts=verdicts,
            objects=base.objects,
            limits=base.limits,
            options=base.options,
            clock=base.clock,
            sleep=base.sleep,
            monotonic=base.monotonic,
            member=member,
            pipeline=base.pipeline,
        )

    return make_service


def build_sheet_service(
    settings: SheetSettings, base: SubmitService, *, s3: Any, dynamodb: Any, sqs: Any
) -> SheetService:
    """`base` is the inputs-file service of the same function (its limits and waits)."""
    store = ObjectStore(s3)
    return SheetService(
        folders=S3Folders(store),
        files=S3SheetFiles(store),
        book=SheetLedger(settings.table_name, dynamodb, retention_days=settings.retention_days),
        runs=RunLedger(settings.table_name, dynamodb, retention_days=settings.retention_days),
        queue=SqsRowQueue(sqs, settings.rows_queue_url),
        limits=base.limits,
        options=_options(settings, base),
        clock=base.clock,
        sleep=base.sleep,
        monotonic=base.monotonic,
    )


def build_row_service(
    settings: SheetSettings,
    base: SubmitService,
    *,
    s3: Any,
    dynamodb: Any,
    sqs: Any,
    pacer: Pacer | None = None,
    retry_base_seconds: int = 30,
) -> RowService:
    store = ObjectStore(s3)
    book = SheetLedger(settings.table_name, dynamodb, retention_days=settings.retention_days)
    paced = PacedSubmitter(base.cromwell, pacer or Pacer(settings.per_invocation_rate, sleep=base.sleep))

    return RowService(
        folders=S3Folders(store),
        book=book,
        files=S3SheetFiles(store),
        queue=SqsRowQueue(sqs, settings.rows_queue_url),
        make_service=member_services(base, paced),
        options=_options(settings, base),
        retry_base_seconds=retry_base_seconds,
        clock=base.clock,
    )


def build_rerun_service(
    settings: SheetSettings, base: SubmitService, sheets: SheetService, *, s3: Any, dynamodb: Any
) -> RerunService:
    """The re-run of a batch's failures: its runs submitted as the inputs-file service submits."""
    store = ObjectStore(s3)

    return RerunService(
        reads=RunViews(settings.table_name, dynamodb),
        runs=RunLedger(settings.table_name, dynamodb, retention_days=settings.retention_days),
        files=S3RerunFiles(store),
        sheets=sheet_rows_of(sheets),
        folders=S3Folders(store),
        make_service=member_services(base, base.cromwell),
        clock=base.clock,
    )


@cache
def default_rerun_service() -> RerunService:
    from submit.handler import default_service  # noqa: PLC0415

    return build_rerun_service(
        sheet_settings(),
        default_service(),
        default_sheet_service(),
        s3=clients.s3(),
        dynamodb=clients.dynamodb(),
    )


@cache
def sheet_settings() -> SheetSettings:
    return load_settings(SheetSettings)


@cache
def default_sheet_service() -> SheetService:
    from submit.handler import default_service  # noqa: PLC0415

    return build_sheet_service(
        sheet_settings(),
        default_service(),
        s3=clients.s3(),
        dynamodb=clients.dynamodb(),
        sqs=clients.aws("sqs"),
    )


@cache
def default_row_service() -> RowService:
    """The rows function's service. Its Cromwell client is the submit function's (the template
    gives the rows function fewer CROMWELL_MAX_ATTEMPTS: a row met by a 503 goes back to the
    queue with a delay rather than waiting inside the invocation)."""
    from submit.handler import default_service  # noqa: PLC0415

    return build_row_service(
        sheet_settings(),
        default_service(),
        s3=clients.s3(),
        dynamodb=clients.dynamodb(),
        sqs=clients.aws("sqs"),
    )
