"""Environment of sample sheets: the submit function (which queues a sheet's rows) and the rows
function (which submits them) both read it, on top of the submit function's own settings."""

from __future__ import annotations

from pydantic import Field

from submit.settings import SubmitSettings


class SheetSettings(SubmitSettings):
    rows_queue_url: str = Field(
        default="", alias="SHEET_ROWS_QUEUE_URL", description="SQS queue of the rows of sample sheets"
    )
    max_sheet_rows: int = Field(default=5000, alias="MAX_SHEET_ROWS", ge=1, le=100_000)
    max_submits_per_second: float = Field(default=5, alias="MAX_SUBMITS_PER_SECOND", gt=0, le=100)
    row_concurrency: int = Field(
        default=2,
        alias="ROW_CONCURRENCY",
        ge=1,
        le=1000,
        description="the rows event source's MaximumConcurrency: each invocation gets this share of the rate",
    )

    @property
    def per_invocation_rate(self) -> float:
        return self.max_submits_per_second / self.row_concurrency
