"""Lists of runs, newest first, from the ledger's `runs` index (never a Scan).

The index holds every run item keyed by `type` = run and `submitted_at`, with the fields a list
shows (`schema.RUNS_PROJECTION`); the task counts stay on the run items, which `complete` reads
with one BatchGetItem per 100 runs of the page shown. Client injected.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from courier.ledger import schema as s
from courier.ledger._codec import from_item, iso, query_items, serialize, to_item
from courier.ledger.records import RunView
from courier.models import RunStatus, TaskStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: What a list needs of a run item: the index's fields and the task counts.
LIST_ATTRIBUTES: tuple[str, ...] = (
    *s.RUNS_PROJECTION,
    s.RUNS_SK,
    *(s.count_attr(status.value) for status in TaskStatus),
)
_BATCH_GET_MAX = 100


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs a list shows. `folder`: a run folder or a prefix of one (`runs/rnaseq/`)."""

    folder: str | None = None
    statuses: tuple[RunStatus, ...] = ()
    since: datetime | None = None
    id_prefix: str | None = None
    inputs_key: str | None = None


class RunListing:
    """Queries on the `runs` index, and the run items behind a page of it."""

    def __init__(self, table_name: str, client: DynamoDBClient, *, page_size: int = 200) -> None:
        self.table_name = table_name
        self.client = client
        self.page_size = page_size

    def newest(self, where: RunFilter | None = None, *, limit: int | None = None) -> Iterator[RunView]:
        """Runs newest first (by submission time) as the index has them: no task counts."""
        where = where or RunFilter()
        names: dict[str, str] = {"#t": s.TYPE}
        values: dict[str, Any] = {":run": serialize(s.ITEM_RUN)}
        key = "#t = :run"
        if where.since is not None:
            names["#at"] = s.RUNS_SK
            key += " AND #at >= :since"
            values[":since"] = serialize(iso(where.since))
        filters: list[str] = []
        simple = (
            ("run_folder", "begins_with({name}, {value})", where.folder),
            ("workflow_id", "begins_with({name}, {value})", where.id_prefix),
            ("inputs_key", "{name} = {value}", where.inputs_key),
        )
        for i, (attribute, condition, wanted) in enumerate(simple):
            if wanted:
                names[f"#c{i}"] = attribute
                values[f":c{i}"] = serialize(wanted)
                filters.append(condition.format(name=f"#c{i}", value=f":c{i}"))
        if where.statuses:
            names["#st"] = "status"
            marks = []
            for i, status in enumerate(where.statuses):
                values[f":st{i}"] = serialize(status.value)
                marks.append(f":st{i}")
            filters.append(f"#st IN ({', '.join(marks)})")
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": s.RUNS_INDEX,
            "KeyConditionExpression": key,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": self.page_size,
        }
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        for item in query_items(self.client, request, limit):
            yield RunView.from_item(item)

    def complete(self, runs: Sequence[RunView]) -> list[RunView]:
        """The same runs, in the same order, read from their run items (with the task counts).
        A run whose item is gone (expired since the index was read) keeps its index view."""
        names = {f"#a{i}": name for i, name in enumerate(LIST_ATTRIBUTES)}
        found: dict[str, RunView] = {}
        ids = list(dict.fromkeys(run.workflow_id for run in runs))
        for start in range(0, len(ids), _BATCH_GET_MAX):
            keys = [
                to_item({s.PK: s.run_pk(wf), s.SK: s.RUN_SK}) for wf in ids[start : start + _BATCH_GET_MAX]
            ]
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": keys,
                    "ProjectionExpression": ", ".join(names),
                    "ExpressionAttributeNames": names,
                }
            }
            for attempt in range(10):
                if not request:
                    break
                if attempt:
                    time.sleep(min(0.05 * 2**attempt, 2.0))  # keys left unprocessed: throttled
                resp = self.client.batch_get_item(RequestItems=request)
                for raw in resp.get("Responses", {}).get(self.table_name, []):
                    view = RunView.from_item(from_item(raw))
                    found[view.workflow_id] = view
                request = dict(resp.get("UnprocessedKeys") or {})
        return [found.get(run.workflow_id, run) for run in runs]
