"""From what a person types to a run: a workflow id or a unique prefix of one, an inputs key of
the runs bucket, or the s3:// URL of an inputs file. Reads go through the ledger's typed views."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import ClientError

from courier.ledger.listing import RunFilter, RunListing
from courier.ledger.records import RunView, TaskView
from courier.ledger.views import RunViews
from courier_cli.deployment import Connection
from courier_cli.errors import ConsoleError

RECEIPT_SUFFIX: Final = ".receipt.json"
_UUID: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ID_PREFIX: Final = re.compile(r"^[0-9a-f-]+$")
MIN_PREFIX: Final = 4
_CANDIDATES_SHOWN: Final = 10


@dataclass(frozen=True, slots=True)
class InputsRef:
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class Ledger:
    """The deployment's ledger as the command reads it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        client = conn.client("dynamodb")
        self.views = RunViews(conn.deployment.table, client)
        self.listing = RunListing(conn.deployment.table, client)

    def tasks(
        self, workflow_id: str, attributes: Sequence[str] | None = TaskView.ATTRIBUTES
    ) -> Iterator[TaskView]:
        return self.views.tasks(workflow_id, attributes)

    def find(self, text: str) -> RunView:
        """The run `text` names; a `ConsoleError` when there is none or more than one."""
        text = text.strip()
        if not text:
            raise ConsoleError(
                "name a run: a workflow id (or its first characters), an inputs key or s3:// URL"
            )
        inputs = self.inputs_ref(text)
        if inputs is not None:
            return self._by_inputs(inputs)
        wanted = text.lower()
        if _UUID.match(wanted):
            run = self.views.run(wanted)
            if run is None:
                raise ConsoleError(
                    f"no run {wanted} in the ledger of {self.conn.deployment.described_as}:"
                    " check the id (`courier runs` lists the runs) or the deployment (--stack, --local)"
                )
            return run
        if not _ID_PREFIX.match(wanted):
            raise ConsoleError(
                f"{text!r} is not a workflow id, a prefix of one, an inputs key (runs/.../inputs.json)"
                " or an s3:// URL"
            )
        if len(wanted) < MIN_PREFIX:
            raise ConsoleError(f"the prefix {text!r} is too short: give at least {MIN_PREFIX} characters")
        found = list(self.listing.newest(RunFilter(id_prefix=wanted), limit=_CANDIDATES_SHOWN + 1))
        if not found:
            raise ConsoleError(f"no run's workflow id starts with {text!r}: `courier runs` lists them")
        if len(found) > 1:
            shown = ", ".join(
                f"{r.workflow_id} ({r.name}, {r.status or '?'})" for r in found[:_CANDIDATES_SHOWN]
            )
            more = " and more" if len(found) > _CANDIDATES_SHOWN else ""
            raise ConsoleError(f"{text!r} is ambiguous: it starts {shown}{more}; give more characters")
        run = self.views.run(found[0].workflow_id)
        return run or found[0]

    def inputs_ref(self, text: str) -> InputsRef | None:
        """An inputs file named by URL or key; None when `text` is not one."""
        if text.startswith("s3://"):
            bucket, _, key = text[5:].partition("/")
            if not bucket or not key:
                raise ConsoleError(f"{text} is not an s3://bucket/key URL of an inputs file")
            return InputsRef(bucket, key)
        if "/" in text or text.endswith(".json"):
            return InputsRef(self.conn.deployment.bucket, text.lstrip("/"))
        return None

    def _by_inputs(self, inputs: InputsRef) -> RunView:
        receipt = self.receipt(inputs.bucket, inputs.key)
        workflow_id = receipt.get("workflow_id") if receipt else None
        if isinstance(workflow_id, str) and workflow_id:
            run = self.views.run(workflow_id)
            if run is not None:
                return run
        found = list(self.listing.newest(RunFilter(inputs_key=inputs.key), limit=50))
        found = [r for r in found if r.source_bucket in (None, inputs.bucket)]
        if found:
            return self.views.run(found[0].workflow_id) or found[0]
        hint = "its receipt names no run" if receipt else "there is no receipt beside it"
        raise ConsoleError(
            f"no run for {inputs.url} ({hint}): was it dropped? `courier drop` uploads a folder"
        )

    def receipt(self, bucket: str, key: str) -> dict[str, Any] | None:
        """The receipt beside an inputs file, None when there is none (yet)."""
        try:
            body = self.conn.client("s3").get_object(Bucket=bucket, Key=key + RECEIPT_SUFFIX)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        try:
            document = json.loads(body)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    def receipt_of(self, run: RunView) -> dict[str, Any] | None:
        if not run.source_bucket or not run.inputs_key:
            return None
        receipt = self.receipt(run.source_bucket, run.inputs_key)
        if receipt is not None and receipt.get("workflow_id") not in (None, run.workflow_id):
            return None  # the inputs file was dropped again: that receipt is another run's
        return receipt
