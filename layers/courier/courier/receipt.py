"""The receipt Courier writes beside each inputs file (`<inputs file>.receipt.json`).

Its JSON form is a stable, documented contract (`schema_version` 1); fields are never renamed,
and new fields are only ever added:

- `schema_version` (int): 1.
- `status` (str): `Submitted` (Cromwell accepted the run), `Rejected` (Courier or Cromwell refused
  it; `reasons` says why) or `Waiting` (Cromwell could not be reached; the run will be submitted
  when it is back).
- `workflow_id` (str): the Cromwell workflow id, derived from the upload (the same upload always
  gets the same id).
- `workflow_name` (str | null): the workflow's name in the main WDL, when known.
- `inputs` (str): the s3:// URI of the inputs file.
- `run_folder` (str): the run folder's prefix in the bucket.
- `main_wdl` (str | null): the main WDL's path relative to the run folder, when known.
- `submitted_at` (str | null): when Cromwell accepted the run, ISO 8601 UTC (`...Z`).
- `decided_at` (str): when this receipt's verdict was reached, ISO 8601 UTC.
- `reasons` (list of str): why the run was refused, one sentence each; empty otherwise.
- `warnings` (list of str): things Courier changed or could not check; the run went ahead.
- `message` (str): one sentence for a person.
- `cromwell_status` (str | null): Cromwell's status on submission (`Submitted`, `On Hold`).

Added by the notify function when a submitted run ends (`notify.artifacts`; every other field is
kept as it was):

- `run_status` (str): how the run ended, `Succeeded`, `Failed` or `Aborted`.
- `ended_at` (str | null): when it ended, ISO 8601 UTC.
- `report` (str | null): the key of `<inputs file>.report.html` in the same bucket; null when it
  could not be written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 1

ReceiptStatus = Literal["Submitted", "Rejected", "Waiting"]

MESSAGE_SUBMITTED = "Cromwell accepted the run."
MESSAGE_WAITING = (
    "Cromwell could not be reached, so the run is waiting: Courier retries, and if Cromwell stays down "
    "the upload is kept for your operators to replay. There is no need to upload the file again."
)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, to the second; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def refusal_message(count: int) -> str:
    if count <= 0:
        return "The run was refused."
    return f"The run was refused: {count} problem{'s' if count != 1 else ''}."


class Receipt(BaseModel):
    """What happened to one inputs file; see the module docstring for each field."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    schema_version: int = SCHEMA_VERSION
    status: ReceiptStatus
    workflow_id: str
    workflow_name: str | None = None
    inputs: str
    run_folder: str
    main_wdl: str | None = None
    submitted_at: str | None = None
    decided_at: str
    reasons: list[str] = []
    warnings: list[str] = []
    message: str
    cromwell_status: str | None = None

    @classmethod
    def submitted(
        cls,
        *,
        workflow_id: str,
        workflow_name: str | None,
        inputs: str,
        run_folder: str,
        main_wdl: str | None,
        cromwell_status: str,
        warnings: Sequence[str] = (),
        at: datetime,
    ) -> Receipt:
        moment = iso_utc(at)
        return cls(
            status="Submitted",
            workflow_id=workflow_id,
            workflow_name=workflow_name or None,
            inputs=inputs,
            run_folder=run_folder,
            main_wdl=main_wdl,
            submitted_at=moment,
            decided_at=moment,
            warnings=list(warnings),
            message=MESSAGE_SUBMITTED,
            cromwell_status=cromwell_status,
        )

    @classmethod
    def rejected(
        cls,
        *,
        workflow_id: str,
        inputs: str,
        run_folder: str,
        reasons: Sequence[str],
        at: datetime,
        workflow_name: str | None = None,
        main_wdl: str | None = None,
        warnings: Sequence[str] = (),
    ) -> Receipt:
        return cls(
            status="Rejected",
            workflow_id=workflow_id,
            workflow_name=workflow_name or None,
            inputs=inputs,
            run_folder=run_folder,
            main_wdl=main_wdl,
            decided_at=iso_utc(at),
            reasons=list(reasons),
            warnings=list(warnings),
            message=refusal_message(len(reasons)),
        )

    @classmethod
    def waiting(
        cls,
        *,
        workflow_id: str,
        workflow_name: str | None,
        inputs: str,
        run_folder: str,
        main_wdl: str | None,
        at: datetime,
        warnings: Sequence[str] = (),
    ) -> Receipt:
        return cls(
            status="Waiting",
            workflow_id=workflow_id,
            workflow_name=workflow_name or None,
            inputs=inputs,
            run_folder=run_folder,
            main_wdl=main_wdl,
            decided_at=iso_utc(at),
            warnings=list(warnings),
            message=MESSAGE_WAITING,
        )

    def to_document(self) -> dict[str, Any]:
        """The receipt as a JSON-ready mapping, fields in their documented order."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)
