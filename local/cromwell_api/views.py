"""Answers built from workflows: filtered metadata, failed jobs, and /query."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.cromwell_api.backend import STATES, Workflow, iso
from local.cromwell_api.rules import Rejection, is_uuid

# -- metadata ----------------------------------------------------------------------------------


def _keeps(key: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    if any(key.startswith(prefix) for prefix in exclude):
        return False
    return not include or any(key.startswith(prefix) for prefix in include)


_ALWAYS = ("shardIndex", "attempt")


def filter_metadata(md: dict[str, Any], include: Sequence[str], exclude: Sequence[str]) -> dict[str, Any]:
    """Cromwell's includeKey/excludeKey: prefix matches at the root and inside each call entry.
    `id` is always kept, and `shardIndex` and `attempt` in each call entry listed; `excludeKey=calls`
    drops the calls; `includeKey=calls` keeps them whole."""
    out: dict[str, Any] = {}
    for key, value in md.items():
        if key == "id":
            out[key] = value
        elif key == "calls" and isinstance(value, dict):
            if any(key.startswith(prefix) for prefix in exclude):
                continue
            whole = any(key.startswith(prefix) for prefix in include)
            calls: dict[str, list[dict[str, Any]]] = {}
            for fqn, entries in value.items():
                kept = []
                for entry in entries:
                    matched = {k: v for k, v in entry.items() if _keeps(k, () if whole else include, exclude)}
                    if matched:  # Cromwell names the shard and attempt of every call entry it lists
                        kept.append({**matched, **{k: entry[k] for k in _ALWAYS if k in entry}})
                if kept:
                    calls[fqn] = kept
            if calls or whole or not include:
                out[key] = calls
        elif _keeps(key, include, exclude):
            out[key] = value
    return out


def expand_subworkflows(
    md: dict[str, Any], fetch: Callable[[str], dict[str, Any] | None], depth: int = 0
) -> dict[str, Any]:
    """Insert `subWorkflowMetadata` beside each surviving `subWorkflowId`, recursively."""
    if depth > 20:
        return md
    for entries in (md.get("calls") or {}).values():
        for entry in entries:
            sub_id = entry.get("subWorkflowId")
            if isinstance(sub_id, str):
                sub = fetch(sub_id)
                if sub is not None:
                    entry["subWorkflowMetadata"] = expand_subworkflows(sub, fetch, depth + 1)
    return md


def failed_jobs(md: dict[str, Any], fetch: Callable[[str], dict[str, Any] | None]) -> dict[str, Any]:
    """The call entries of failed jobs, sub-workflows included."""
    calls: dict[str, list[dict[str, Any]]] = {}
    for fqn, entries in (md.get("calls") or {}).items():
        for entry in entries:
            sub_id = entry.get("subWorkflowId")
            if isinstance(sub_id, str):
                sub = fetch(sub_id)
                nested = failed_jobs(sub, fetch) if sub is not None else {}
                if nested.get("calls"):
                    calls.setdefault(fqn, []).append({**entry, "subWorkflowMetadata": nested})
            elif entry.get("executionStatus") == "Failed":
                calls.setdefault(fqn, []).append(entry)
    return {
        "id": md["id"],
        "workflowName": md.get("workflowName"),
        "status": md.get("status"),
        "calls": calls,
    }


_LOG_KEYS = ("stdout", "stderr", "backendLogs")


def workflow_logs(md: dict[str, Any]) -> dict[str, Any]:
    """Cromwell's /logs: the log paths of each call attempt of this workflow (not of its
    sub-workflows), with `shardIndex` and `attempt`; no `calls` when no call has logs yet."""
    calls: dict[str, list[dict[str, Any]]] = {}
    for fqn, entries in (md.get("calls") or {}).items():
        for entry in entries:
            logs = {k: entry[k] for k in _LOG_KEYS if k in entry}
            if logs:
                logs.update(shardIndex=entry.get("shardIndex", -1), attempt=entry.get("attempt", 1))
                calls.setdefault(fqn, []).append(logs)
    return {"id": md["id"], "calls": calls} if calls else {"id": md["id"]}


# -- timing ------------------------------------------------------------------------------------

_TIMING_KEYS = ("start", "end", "executionStatus", "executionEvents", "subWorkflowMetadata", "status")


@dataclass(frozen=True)
class Bar:
    """One call attempt that started; `end` is None while it runs."""

    name: str
    status: str
    start: datetime
    end: datetime | None


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def _bars(md: dict[str, Any], prefix: str = "") -> list[Bar]:
    bars: list[Bar] = []
    for fqn, entries in (md.get("calls") or {}).items():
        for entry in entries:
            shard, attempt = entry.get("shardIndex", -1), entry.get("attempt", 1)
            name = (
                prefix + fqn + (f" [{shard}]" if shard >= 0 else "") + (f" #{attempt}" if attempt > 1 else "")
            )
            start = _moment(entry.get("start"))
            if start is not None:  # not started yet: no bar
                status = str(entry.get("executionStatus", ""))
                bars.append(Bar(name, status, start, _moment(entry.get("end"))))
            sub = entry.get("subWorkflowMetadata")
            if isinstance(sub, dict):
                bars.extend(_bars(sub, prefix=f"{name} / "))
    return bars


def timing_page(md: dict[str, Any], now: datetime) -> str:
    """A self-contained HTML page (no scripts, nothing fetched) with one bar per call attempt between
    its start and end, as Cromwell's timing diagram shows them; running calls end at `now`."""
    bars = _bars(filter_metadata(md, _TIMING_KEYS, ()))
    first = min([b.start for b in bars] + [_moment(md.get("start")) or now])
    last = max([b.end or now for b in bars] + [_moment(md.get("end")) or now, first])
    span = max((last - first).total_seconds(), 0.001)
    rows = []
    for bar in sorted(bars, key=lambda b: (b.start, b.name)):
        left = (bar.start - first).total_seconds() / span * 100
        width = max(((bar.end or now) - bar.start).total_seconds() / span * 100, 0.3)
        seconds = ((bar.end or now) - bar.start).total_seconds()
        rows.append(
            f"<tr><td>{html.escape(bar.name)}</td><td>{html.escape(bar.status)}</td><td>{seconds:.1f} s</td>"
            f'<td class="lane"><div class="bar {html.escape(bar.status.lower())}" '
            f'style="margin-left:{left:.2f}%;width:{width:.2f}%"></div></td></tr>'
        )
    title = f"{md.get('workflowName', 'workflow')} {md['id']} ({md.get('status', '')})"
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Timing: '
        + html.escape(title)
        + "</title><style>body{font-family:sans-serif}table{width:100%;border-collapse:collapse}"
        "td{padding:2px 6px;border-bottom:1px solid #eee;white-space:nowrap}td.lane{width:60%}"
        ".bar{height:12px;background:#4a90d9}.bar.done{background:#5cb85c}.bar.failed{background:#d9534f}"
        ".bar.aborted,.bar.retryablefailure{background:#f0ad4e}</style></head><body><h1>"
        + html.escape(title)
        + f"</h1><p>{len(rows)} call attempts, {span:.1f} s from first start to last end.</p>"
        + "<table><tr><th>call</th><th>status</th><th>time</th><th></th></tr>"
        + "".join(rows)
        + "</table></body></html>\n"
    )


# -- query -------------------------------------------------------------------------------------

KEYS = {
    k.lower(): k
    for k in (
        "start",
        "end",
        "submission",
        "status",
        "name",
        "id",
        "label",
        "labelor",
        "excludeLabelAnd",
        "excludeLabelOr",
        "page",
        "pageSize",
        "additionalQueryResultFields",
        "includeSubworkflows",
        "newestFirst",
    )
}
_SINGLE = {"start", "end", "submission", "page", "pageSize", "includeSubworkflows", "newestFirst"}
_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")
_EXTRA_FIELDS = {"labels", "parentWorkflowId"}


@dataclass
class Query:
    values: dict[str, list[str]] = field(default_factory=dict)

    def all(self, key: str) -> list[str]:
        return self.values.get(key, [])

    def one(self, key: str) -> str | None:
        found = self.values.get(key)
        return found[0] if found else None


def _when(key: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Rejection(f"{key} must be an ISO 8601 date-time: {value}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _flag(key: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise Rejection(f"{key} must be true or false: {value}")
    return value.lower() == "true"


def _positive(key: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise Rejection(f"{key} must be a positive integer: {value}")
    return int(value)


def parse_query(pairs: Iterable[tuple[str, str]]) -> Query:
    """Check query keys and values the way Cromwell's WorkflowQueryParameters does."""
    query = Query()
    unknown = []
    for raw_key, value in pairs:
        key = KEYS.get(raw_key.lower())
        if key is None:
            unknown.append(raw_key)
            continue
        query.values.setdefault(key, []).append(value)
    if unknown:
        raise Rejection(f"Unrecognized query keys: {', '.join(unknown)}")
    problems = [f"{k} can be specified at most once" for k in _SINGLE if len(query.all(k)) > 1]
    problems += [f"Unrecognized status values: {s}" for s in query.all("status") if s not in STATES]
    problems += [f"Invalid workflow id: {i}" for i in query.all("id") if not is_uuid(i)]
    problems += [f"Invalid workflow name: {n}" for n in query.all("name") if not _NAME.match(n)]
    for key in ("label", "labelor", "excludeLabelAnd", "excludeLabelOr"):
        problems += [f"{key} must be key:value: {v}" for v in query.all(key) if ":" not in v]
    problems += [
        f"Unrecognized additionalQueryResultFields: {v}"
        for v in query.all("additionalQueryResultFields")
        if v not in _EXTRA_FIELDS
    ]
    if problems:
        raise Rejection("Invalid query parameters", problems)
    moments = {k: _when(k, v) for k in ("start", "end", "submission") if (v := query.one(k)) is not None}
    if "start" in moments and "end" in moments and moments["start"] > moments["end"]:
        raise Rejection(
            f"Specified start date is after specified end date: start: {query.one('start')}, "
            f"end: {query.one('end')}"
        )
    if "submission" in moments and "start" in moments and moments["submission"] > moments["start"]:
        raise Rejection(
            f"Specified submission date is after specified start date: submission: "
            f"{query.one('submission')}, start: {query.one('start')}"
        )
    for key in ("page", "pageSize"):
        if (number := query.one(key)) is not None:
            _positive(key, number)
    for key in ("includeSubworkflows", "newestFirst"):
        if (flag := query.one(key)) is not None:
            _flag(key, flag)
    return query


def _label_pairs(values: Sequence[str]) -> list[tuple[str, str]]:
    return [(v.split(":", 1)[0], v.split(":", 1)[1]) for v in values]


def _matches(wf: Workflow, q: Query) -> bool:
    labels = wf.all_labels()
    has = [labels.get(k) == v for k, v in _label_pairs(q.all("label"))]
    has_or = [labels.get(k) == v for k, v in _label_pairs(q.all("labelor"))]
    ex_and = [labels.get(k) == v for k, v in _label_pairs(q.all("excludeLabelAnd"))]
    ex_or = [labels.get(k) == v for k, v in _label_pairs(q.all("excludeLabelOr"))]
    checks = [
        not q.all("status") or wf.status in q.all("status"),
        not q.all("name") or wf.name in q.all("name"),
        not q.all("id") or wf.id in {i.lower() for i in q.all("id")},
        all(has),
        not has_or or any(has_or),
        not ex_and or not all(ex_and),
        not any(ex_or),
        _flag("includeSubworkflows", q.one("includeSubworkflows") or "true") or wf.parent_id is None,
    ]
    if (submission := q.one("submission")) is not None:
        checks.append(wf.submission >= _when("submission", submission))
    if (start := q.one("start")) is not None:
        checks.append(wf.start is not None and wf.start >= _when("start", start))
    if (end := q.one("end")) is not None:
        checks.append(wf.end is not None and wf.end <= _when("end", end))
    return all(checks)


def run_query(query: Query, workflows: Iterable[Workflow]) -> dict[str, Any]:
    newest_first = _flag("newestFirst", query.one("newestFirst") or "true")
    found = sorted(
        (wf for wf in workflows if _matches(wf, query)),
        key=lambda wf: (wf.submission, wf.id),
        reverse=newest_first,
    )
    total = len(found)
    page_size = query.one("pageSize")
    if page_size is not None or query.one("page") is not None:
        size = int(page_size) if page_size is not None else total or 1
        page = int(query.one("page") or "1")
        found = found[(page - 1) * size : page * size]
    extra = set(query.all("additionalQueryResultFields"))
    results = []
    for wf in found:
        row: dict[str, Any] = {
            "id": wf.id,
            "name": wf.name,
            "status": wf.status,
            "submission": iso(wf.submission),
            "metadataArchiveStatus": "Unarchived",
        }
        if wf.start is not None:
            row["start"] = iso(wf.start)
        if wf.end is not None:
            row["end"] = iso(wf.end)
        if wf.parent_id is not None:
            row["rootWorkflowId"] = wf.root_id or wf.parent_id
            if "parentWorkflowId" in extra:
                row["parentWorkflowId"] = wf.parent_id
        if "labels" in extra:
            row["labels"] = wf.all_labels()
        results.append(row)
    return {"results": results, "totalResultsCount": total}
