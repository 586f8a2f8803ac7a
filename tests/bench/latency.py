"""Latency of the two paths a user sees, measured on the local stack (`local.stack.LocalStack`):

1. from the S3 put of an inputs file to Cromwell's 201 for its submission (and to the receipt);
2. from the terminal Batch event of the run's last task to the message as delivered: the POST
   the Slack receiver takes, and the e-mail the inbox takes off the queue subscribed to the topic.
   The same is measured from Cromwell's end of the run (its completion callback), which leaves out
   the time the emulated Cromwell spends closing the run after its last job.

The stack runs the whole chain: moto's server for AWS (resources from template.yaml), EventBridge
rules and their stand-in queues, the SQS and DynamoDB-stream event sources polled by the router,
the function URL for Cromwell's callback, and the local engine running the WDL as processes. The
figures therefore include the router's polling (50 ms), its SQS batching window (up to 0.3 s) and
the inbox's polling (100 ms), which stand in for the delivery delays of the AWS services.

Timestamps are `time.monotonic()` in this process, taken by observers that live here:

- put: just before `PutObject` of inputs.json (its WDL is uploaded first, as a user would);
- Cromwell's 201: when the Cromwell-compatible server logs its answer (the server's request log
  is swapped for `StampedLog`, which notes the time of every entry);
- receipt, Slack post, e-mail: when the stack's timeline gets the entry (`on_entry`);
- terminal Batch event: when the engine puts the event on the bus (`TimedStack.emit_batch_event`);
- Cromwell's end: when the engine hands over its completion callback (`TimedStack.post_callback`).

`handlers_only` runs the same two paths with the handlers called in-process over moto (each
function gets the event the previous step produced): the functions' own share of the figures.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HELLO = Path(__file__).resolve().parents[1] / "fixtures" / "wdl" / "hello"
TERMINAL_BATCH = frozenset({"SUCCEEDED", "FAILED"})
STACK_TIMEOUT = 60.0

#: The rows of the local-stack tables: (key, label, start mark, end mark).
PATHS: tuple[tuple[str, str, str, str], ...] = (
    ("put_to_201", "S3 put of inputs.json -> Cromwell's 201", "put", "cromwell_201"),
    ("put_to_receipt", "S3 put of inputs.json -> receipt written", "put", "receipt"),
    ("terminal_event_to_slack", "terminal Batch event -> Slack post received", "terminal_event", "slack"),
    ("terminal_event_to_email", "terminal Batch event -> e-mail received", "terminal_event", "email"),
)
BREAKDOWN: tuple[tuple[str, str, str, str], ...] = (
    (
        "terminal_event_to_cromwell_end",
        "terminal Batch event -> Cromwell's end (local engine closes the run)",
        "terminal_event",
        "cromwell_end",
    ),
    (
        "cromwell_end_to_callback_answered",
        "Cromwell's end -> callback answered (Batch events in flight taken first, then the POST)",
        "cromwell_end",
        "callback_answered",
    ),
    (
        "callback_answered_to_ended_on_stream",
        "callback answered -> ENDED event read from the ledger stream",
        "callback_answered",
        "ended_on_stream",
    ),
    ("ended_on_stream_to_slack", "ENDED on the stream -> Slack post received", "ended_on_stream", "slack"),
    ("ended_on_stream_to_email", "ENDED on the stream -> e-mail received", "ended_on_stream", "email"),
)


def _stats(seconds: list[float]) -> dict[str, Any]:
    return {
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
        "samples_ms": [round(s * 1000, 1) for s in seconds],
    }


# -- observers ------------------------------------------------------------------------------------


class StampedLog(list[Any]):
    """The Cromwell-compatible server's request log, noting when each answer was logged (the
    server logs a request right before it sends the answer)."""

    def __init__(self, items: Iterable[Any] = ()) -> None:
        super().__init__(items)
        self.stamps: list[tuple[float, Any]] = []

    def append(self, item: Any) -> None:
        self.stamps.append((time.monotonic(), item))
        super().append(item)

    def answered(self, operation: str, workflow_id: str, status: int) -> float | None:
        """When the first `operation` answer with `status` naming `workflow_id` was logged."""
        for at, request in list(self.stamps):
            response = request.response if isinstance(request.response, dict) else {}
            if (
                request.operation == operation
                and request.status == status
                and response.get("id") == workflow_id
            ):
                return at
        return None


@dataclass
class Marks:
    """Times noted by the observers, per workflow id."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    terminal_events: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    cromwell_end: dict[str, float] = field(default_factory=dict)
    entries: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))

    def entry(self, entry: Any) -> None:
        """The timeline's sink: receipts, Slack posts and e-mails as the stack sees them."""
        if entry.workflow_id:
            with self.lock:
                self.entries[(entry.workflow_id, entry.kind)].append(time.monotonic())

    def first(self, workflow_id: str, kind: str, after: float) -> float | None:
        with self.lock:
            times = [t for t in self.entries.get((workflow_id, kind), []) if t >= after]
        return min(times) if times else None


def timed_stack_class() -> type[Any]:
    """`LocalStack` with observers on the two things the engine causes (imported when used)."""
    from local.stack import LocalStack  # noqa: PLC0415

    class TimedStack(LocalStack):
        marks: Marks

        def emit_batch_event(self, detail_type: str, detail: dict[str, Any]) -> None:
            if detail.get("status") in TERMINAL_BATCH:
                root = str((detail.get("tags") or {}).get("cromwell-root-workflow-id") or "")
                with self.marks.lock:
                    self.marks.terminal_events[root].append(time.monotonic())
            super().emit_batch_event(detail_type, detail)

        def post_callback(self, url: str, body: dict[str, Any]) -> None:
            with self.marks.lock:
                self.marks.cromwell_end.setdefault(str(body.get("workflowId")), time.monotonic())
            super().post_callback(url, body)

    return TimedStack


# -- the local stack --------------------------------------------------------------------------------


def _one_drop(stack: Any, log: StampedLog, marks: Marks, n: int) -> dict[str, float]:
    """Drop one run folder (hello.wdl, then inputs.json); the marks of its life, in seconds."""
    prefix = f"bench/latency-{n}"
    label = f"latency-{n}"
    stack.put(f"{prefix}/hello.wdl", (HELLO / "hello.wdl").read_bytes())
    put_at = time.monotonic()
    workflow_id = stack.put(f"{prefix}/inputs.json", (HELLO / "inputs.json").read_bytes(), label=label)
    run = stack.wait_for_end(workflow_id, timeout=STACK_TIMEOUT)
    if run is None or run.status != "Succeeded":
        raise RuntimeError(f"the latency run {workflow_id} did not end as Succeeded: {run}")
    got = stack.wait_for(
        lambda: marks.first(workflow_id, "slack", put_at) and marks.first(workflow_id, "e-mail", put_at),
        timeout=10,
        interval=0.05,
    )
    with marks.lock:
        terminal = max(marks.terminal_events.get(workflow_id) or [0.0])
        ended = marks.cromwell_end.get(workflow_id)
    answered = log.answered("submit", workflow_id, 201)
    times = {
        "put": put_at,
        "cromwell_201": answered,
        "receipt": marks.first(workflow_id, "receipt", put_at),
        "terminal_event": terminal or None,
        "cromwell_end": ended,
        "slack": marks.first(workflow_id, "slack", terminal),
        "email": marks.first(workflow_id, "e-mail", terminal),
    }
    missing = [name for name, at in times.items() if at is None]
    if not got or missing:
        raise RuntimeError(f"latency run {workflow_id}: no timestamp for {', '.join(missing) or 'messages'}")
    return {name: float(at) for name, at in times.items() if at is not None}


def on_local_stack(repeats: int) -> dict[str, Any]:
    """`repeats` drops, one after the other, after one warm-up drop that is not counted."""
    from local.stack import LocalStackOptions  # noqa: PLC0415

    marks = Marks()
    samples: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="courier-bench-") as work:
        # Call caching off: every drop of the same run must run its task (a cache hit has no job).
        options = LocalStackOptions(on_entry=marks.entry, work_dir=Path(work), call_caching=False)
        stack = timed_stack_class()(options)
        stack.marks = marks
        started = time.monotonic()
        with stack:
            up = time.monotonic() - started
            log = StampedLog(stack.cromwell.app.requests)
            stack.cromwell.app.requests = log
            for n in range(repeats + 1):
                times = _one_drop(stack, log, marks, n)
                if n == 0:
                    continue  # warm-up: first connections, first runner process
                for key, _, start, end in PATHS:
                    samples[key].append(times[end] - times[start])
    return {
        "through": "local stack (python -m local.stack): moto server, router, local engine, receivers",
        "workflow": "tests/fixtures/wdl/hello (one task)",
        "stack_start_seconds": round(up, 2),
        "paths": {key: _stats(samples[key]) for key, *_ in PATHS},
    }


# -- the handlers alone ------------------------------------------------------------------------------


def handlers_only(repeats: int) -> dict[str, Any]:
    """The two paths with the handlers called in-process over moto and `CromwellTestServer`; the
    delivery delays of EventBridge, SQS and the DynamoDB stream are left out."""
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    from courier.cromwell import CromwellClient, SubmitRequest, SubmitResult  # noqa: PLC0415
    from courier.ledger._codec import query_items  # noqa: PLC0415
    from courier.settings import load_settings  # noqa: PLC0415
    from local.cromwell_api import CromwellTestServer  # noqa: PLC0415
    from monitor import batch_events as monitor_handler  # noqa: PLC0415
    from monitor.composition import compose_batch_events, compose_reconciler  # noqa: PLC0415
    from monitor.settings import MonitorSettings, ReconcilerSettings  # noqa: PLC0415
    from notify.composition import compose as compose_notifier  # noqa: PLC0415
    from notify.handler import lambda_handler as notify_handler  # noqa: PLC0415
    from notify.settings import NotifySettings  # noqa: PLC0415
    from submit.composition import compose as compose_submit  # noqa: PLC0415
    from tests.support.ledger_table import create_ledger_table  # noqa: PLC0415
    from tests.support.monitor_fixtures import T0, Ctx, FakeTags, Job, lifecycle, sqs_batch  # noqa: PLC0415
    from tests.support.notify_fixtures import TOPIC_NAME, FakeContext, stream_event  # noqa: PLC0415
    from tests.support.submit_fixtures import TABLE, make_world  # noqa: PLC0415

    class TimedCromwell(CromwellClient):
        """A Cromwell client that notes when each submission's 201 came back."""

        def __init__(self, url: str) -> None:
            super().__init__(url, max_attempts=1, timeout=(2, 5))
            self.answered_at: list[float] = []

        def submit(self, request: SubmitRequest) -> SubmitResult:
            result = super().submit(request)
            self.answered_at.append(time.monotonic())
            return result

    def one_run(n: int, world: Any, dynamodb: Any, sns: Any, server: Any) -> tuple[float, float]:
        cromwell = TimedCromwell(server.url)
        service = compose_submit(
            world.settings(), s3=world.s3, dynamodb=dynamodb, cromwell=cromwell, callback_uri=None
        )
        prefix = f"runs/latency-{n}/"
        world.put(prefix + "hello.wdl", (HELLO / "hello.wdl").read_bytes())
        started = time.monotonic()
        event = world.put(prefix + "inputs.json", (HELLO / "inputs.json").read_bytes())
        answer = world.invoke(event, service=service)
        submit_latency = cromwell.answered_at[-1] - started
        workflow_id = answer["workflow_id"]

        server.backend.set_status(workflow_id, "Running")
        settings = MonitorSettings.model_validate({"LEDGER_TABLE": TABLE})
        monitor = compose_batch_events(settings, dynamodb=dynamodb, tags=FakeTags())
        events = lifecycle(Job("hello.hello", workflow_id, root_name="hello"), start=T0)
        monitor_handler.lambda_handler(sqs_batch(events[:-1]), Ctx(), service=monitor)
        server.backend.set_outputs(workflow_id, {"hello.out": "s3://bucket/out.txt"})
        server.backend.set_status(workflow_id, "Succeeded")
        notifier = compose_notifier(load_settings(NotifySettings), dynamodb=dynamodb, sns=sns, s3=world.s3)
        started = time.monotonic()
        monitor_handler.lambda_handler(sqs_batch(events[-1:]), Ctx(), service=monitor)
        # The end check the last task end asked for, made by the reconciler's next pass (its
        # minute of waiting is not counted here: see the Cromwell-calls benchmark).
        later = datetime.now(UTC) + timedelta(minutes=2)
        sweep_settings = ReconcilerSettings.model_validate(
            {"LEDGER_TABLE": TABLE, "CROMWELL_URL": server.url}
        )
        compose_reconciler(
            sweep_settings,
            dynamodb=dynamodb,
            cromwell=CromwellClient(server.url, max_attempts=1),
            clock=lambda: later,
        ).sweep()
        ended = {
            "TableName": TABLE,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :ev)",
            "ExpressionAttributeValues": {":pk": {"S": f"RUN#{workflow_id}"}, ":ev": {"S": "EVENT#ENDED"}},
        }
        items = list(query_items(dynamodb, ended))
        result = notify_handler(stream_event(*items), FakeContext(), notifier=notifier)  # type: ignore[arg-type]
        end_latency = time.monotonic() - started
        if not items or result.get("batchItemFailures"):
            raise RuntimeError(f"the run's end was not delivered: {len(items)} ENDED event(s), {result}")
        return submit_latency, end_latency

    submits: list[float] = []
    ends: list[float] = []
    with mock_aws(), CromwellTestServer() as server:
        s3 = boto3.client("s3", region_name="us-east-1")
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        sns = boto3.client("sns", region_name="us-east-1")
        sns.create_topic(Name=TOPIC_NAME)
        create_ledger_table(dynamodb, TABLE)
        world = make_world((s3, dynamodb), server)
        for n in range(repeats + 1):
            submit_s, end_s = one_run(n, world, dynamodb, sns, server)
            if n:  # the first run warms imports and clients
                submits.append(submit_s)
                ends.append(end_s)
    return {
        "through": "handlers in-process over moto + CromwellTestServer",
        "paths": {"put_to_201": _stats(submits), "terminal_event_to_sns_publish": _stats(ends)},
    }


def measure(repeats: int = 7) -> dict[str, Any]:
    return {
        "repeats": repeats,
        "local_stack": on_local_stack(repeats),
        "handlers_only": handlers_only(repeats),
    }


def render(fig: dict[str, Any]) -> list[str]:
    stack = fig["local_stack"]
    alone = fig["handlers_only"]["paths"]
    lines = [
        f"Measured on the **local stack** (`local.stack.LocalStack`, started in "
        f"{stack['stack_start_seconds']} s): {fig['repeats']} drops of {stack['workflow']}, one after "
        "the other, after one warm-up drop that is not counted; median and max. Each drop uploads "
        "hello.wdl, then inputs.json, and waits until the run's end is delivered. Every event goes "
        "the way the template wires it (S3 -> EventBridge -> submit; Batch events -> EventBridge -> "
        "SQS -> monitor; Cromwell's callback -> function URL; ledger stream -> notify -> SNS/Slack). "
        "The stand-ins poll: the router every 50 ms with an SQS batching window of up to 0.3 s, the "
        "e-mail inbox (an SQS queue subscribed to the topic) every 100 ms; AWS's own delivery "
        "delays are not modelled.",
        "",
        "| Path | median ms | max ms |",
        "|---|---:|---:|",
    ]
    for key, label, *_ in PATHS:
        row = stack["paths"][key]
        lines.append(f"| {label} | {row['median_ms']} | {row['max_ms']} |")
    lines += [
        "",
        "Timestamps: the put is taken just before `PutObject`; Cromwell's 201 when the "
        "Cromwell-compatible server logs its answer; the terminal Batch event when the local engine "
        "puts the last task's SUCCEEDED event on the bus; Cromwell's end when the engine hands over "
        "its completion callback; the receipt, Slack post and e-mail when the stack's timeline "
        "records them. Between the terminal Batch event and Cromwell's end the emulated Cromwell "
        "closes the run (its runner process exits, outputs are copied to S3): that part is the "
        "local engine's, not Courier's.",
        "",
        "The functions alone (handlers called in-process over moto, each given the event the "
        "previous step produced; no event-source delays). Without the callback, the terminal Batch "
        "event asks for an end check that the reconciler makes a minute later: the row counts the "
        "monitor, that pass and notify, not the minute of waiting (the Cromwell-calls section "
        "measures the whole time from Cromwell's end to the ENDED event):",
        "",
        "| Path | median ms | max ms |",
        "|---|---:|---:|",
        f"| S3 put of inputs.json -> Cromwell's 201 | {alone['put_to_201']['median_ms']} "
        f"| {alone['put_to_201']['max_ms']} |",
        f"| terminal Batch event -> SNS publish | {alone['terminal_event_to_sns_publish']['median_ms']} "
        f"| {alone['terminal_event_to_sns_publish']['max_ms']} |",
    ]
    return lines
