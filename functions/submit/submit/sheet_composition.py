"""Sample sheets wired to their adapters: the sheet service (submit function) and the row service
(rows function). Both reuse the inputs-file service's own composition (`submit.composition`):
the rows are submitted by a `SubmitService` whose folder, receipt sink and Cromwell port are the
row's."""

from __future__ import annotations

from functools import cache
from typing import Any

from courier import clients
from courier.ledger import RunLedger
from courier.ledger.sheets import SheetLedger
from courier.settings import load_settings
from courier.storage import ObjectStore
from submit.adapters import S3Folders
from submit.service import FolderSource, Membership, SubmitService
from submit.sheet_adapters import PacedSubmitter, Pacer, S3SheetFiles, SqsRowQueue
from submit.sheet_service import RowService, RowVerdicts, SheetOptions, SheetService
from submit.sheet_settings import SheetSettings


def _options(settings: SheetSettings, base: SubmitService) -> SheetOptions:
    return SheetOptions(
        max_rows=settings.max_sheet_rows,
        wdl_wait_seconds=base.options.wdl_wait_seconds,
        poll_seconds=base.options.poll_seconds,
    )


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

    def make_service(folders: FolderSource, verdicts: RowVerdicts, member: Membership) -> SubmitService:
        return SubmitService(
            folders=folders,
            cromwell=paced,
            ledger=base.ledger,
            receipts=verdicts,
            objects=base.objects,
            limits=base.limits,
            options=base.options,
            clock=base.clock,
            sleep=base.sleep,
            monotonic=base.monotonic,
            member=member,
        )

    return RowService(
        folders=S3Folders(store),
        book=book,
        files=S3SheetFiles(store),
        queue=SqsRowQueue(sqs, settings.rows_queue_url),
        make_service=make_service,
        options=_options(settings, base),
        retry_base_seconds=retry_base_seconds,
        clock=base.clock,
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
