"""Test helpers for the notify function: the ledger table (moto), seeded runs, tasks and outbox
events, DynamoDB stream records as Lambda delivers them, a local Slack receiver and fakes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws

from courier.costs import Prices
from courier.ledger import schema as s
from courier.ledger._codec import to_item
from courier.ledger.records import RunView, TaskView
from courier.settings import load_settings
from notify.adapters import DeliveryError, Posted
from notify.composition import compose
from notify.delivery import Notifier
from notify.handler import lambda_handler
from notify.settings import NotifySettings
from tests.support.ledger_table import create_ledger_table

TABLE = "courier-ledger"
REGION = "us-east-1"
TOPIC_NAME = "courier-notifications"
PRICES = Prices(0.04, 0.004, 0.012, 0.0012)
T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create_table(client: Any, name: str = TABLE) -> None:
    """The ledger table of docs/ledger.md."""
    create_ledger_table(client, name)


def run_item(workflow_id: str, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        s.PK: s.run_pk(workflow_id),
        s.SK: s.RUN_SK,
        s.TYPE: s.ITEM_RUN,
        "workflow_id": workflow_id,
        "workflow_name": "germline",
        "status": "Running",
        "status_rank": 3,
        "origin": "dropped",
        "source_bucket": "lab-runs",
        "inputs_key": "runs/sample-1/inputs.json",
        "run_folder": "runs/sample-1/",
        "requester": "arn:aws:iam::123456789012:user/alice",
        "submitted_at": iso(T0),
        "started_at": iso(T0 + timedelta(minutes=2)),
        "updated_at": iso(T0 + timedelta(minutes=2)),
    }
    item.update(fields)
    return item


def task_item(workflow_id: str, job_id: str, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        s.PK: s.run_pk(workflow_id),
        s.SK: s.task_sk(job_id),
        s.TYPE: s.ITEM_TASK,
        "job_id": job_id,
        "call": "germline.align",
        "shard": -1,
        "attempt": 1,
        "workflow_id": workflow_id,
        "root_workflow_id": workflow_id,
        "status": "SUCCEEDED",
        "created_at": iso(T0 + timedelta(minutes=3)),
        "started_at": iso(T0 + timedelta(minutes=5)),
        "stopped_at": iso(T0 + timedelta(minutes=65)),
        "vcpus": 4,
        "memory_mib": 8192,
        "queue": "arn:aws:batch:us-east-1:123456789012:job-queue/courier-ondemand",
        "log_group": "/aws/batch/job",
        "log_stream": f"cromwell_ubuntu/default/{job_id}",
    }
    item.update(fields)
    return item


def event_item(
    workflow_id: str,
    kind: str,
    payload: Mapping[str, Any] | None = None,
    discriminator: str = "",
    **fields: Any,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        s.PK: s.run_pk(workflow_id),
        s.SK: s.event_sk(kind, discriminator),
        s.TYPE: s.ITEM_EVENT,
        "kind": kind,
        "workflow_id": workflow_id,
        "created_at": iso(T0 + timedelta(hours=2)),
        "payload": dict(payload or {}),
        s.TTL_ATTR: int((T0 + timedelta(days=90)).timestamp()),
    }
    item.update(fields)
    return item


def put(client: Any, item: Mapping[str, Any], table: str = TABLE) -> None:
    client.put_item(TableName=table, Item=to_item(item))


def put_many(client: Any, items: Sequence[Mapping[str, Any]], table: str = TABLE) -> None:
    for start in range(0, len(items), 25):
        chunk = items[start : start + 25]
        client.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": to_item(i)}} for i in chunk]})


def stream_record(item: Mapping[str, Any], sequence: int, *, event_name: str = "INSERT") -> dict[str, Any]:
    """One record of a DynamoDB stream event, as Lambda hands it to the function."""
    image = to_item(item)
    return {
        "eventID": f"{sequence:032x}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": {
            "ApproximateCreationDateTime": 1772442000,
            "Keys": {s.PK: image[s.PK], s.SK: image[s.SK]},
            "NewImage": image,
            "SequenceNumber": str(100000000000000000000 + sequence),
            "SizeBytes": len(json.dumps(image)),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": (
            f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}/stream/2026-03-01T00:00:00.000"
        ),
    }


def stream_event(*items: Mapping[str, Any], first_sequence: int = 1) -> dict[str, Any]:
    return {"Records": [stream_record(item, first_sequence + i) for i, item in enumerate(items)]}


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeContext:
    """The parts of LambdaContext the handler and Powertools use."""

    function_name: str = "NotifyFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:NotifyFunction"
    aws_request_id: str = "00000000-0000-0000-0000-000000000001"
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class FakePoster:
    """A Slack poster that records what it was given; `fail` makes the next posts fail."""

    threads: bool = True
    fail: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)
    _counter: int = 0

    def post(
        self, payload: dict[str, Any], *, channel: str | None, thread_ts: str | None, broadcast: bool
    ) -> Posted:
        if self.fail > 0:
            self.fail -= 1
            raise DeliveryError("slack", "HTTP 503 from fake Slack")
        self._counter += 1
        ts = f"1772442000.{self._counter:06d}"
        self.posts.append(
            {"payload": payload, "channel": channel, "thread_ts": thread_ts, "broadcast": broadcast, "ts": ts}
        )
        return Posted(channel=channel or "C0DEFAULT", ts=ts)


@dataclass
class SlackReceiver:
    """A local HTTP server that plays Slack: records every request; answers from a script of
    (status, headers, body) tuples, then 200 with a chat.postMessage-like body."""

    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SlackReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    body: Any = json.loads(raw or "{}")
                else:
                    from urllib.parse import parse_qs  # noqa: PLC0415

                    body = {k: v[0] for k, v in parse_qs(raw).items()}
                receiver.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                if receiver.script:
                    status, headers, text = receiver.script.pop(0)
                else:
                    n = len(receiver.requests)
                    channel = body.get("channel", "C0DEFAULT") if isinstance(body, dict) else "C0DEFAULT"
                    status, headers = 200, {"Content-Type": "application/json"}
                    text = json.dumps({"ok": True, "channel": channel, "ts": f"1772442000.{n:06d}"})
                    if self.path.startswith("/hooks"):
                        headers, text = {"Content-Type": "text/plain"}, "ok"
                data = text.encode("utf-8")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def lazy_tasks(workflow_id: str, count: int, *, failed_every: int = 0) -> Iterator[dict[str, Any]]:
    """Task items generated one at a time (a stand-in for a paginated query in benchmarks)."""
    for i in range(count):
        failed = failed_every and i % failed_every == 0
        yield {
            "job_id": f"{i:08d}-0000-4000-8000-{i:012d}",
            "call": "big.scatter_task",
            "shard": i,
            "attempt": 1,
            "workflow_id": workflow_id,
            "status": "FAILED" if failed else "SUCCEEDED",
            "status_reason": "Essential container in task exited" if failed else None,
            "exit_code": 1 if failed else 0,
            "created_at": iso(T0 + timedelta(seconds=i)),
            "started_at": iso(T0 + timedelta(seconds=i + 30)),
            "stopped_at": iso(T0 + timedelta(seconds=i + 630)),
            "vcpus": 2,
            "memory_mib": 4096,
            "queue": "arn:aws:batch:us-east-1:123456789012:job-queue/courier-spot",
            "log_group": "/aws/batch/job",
            "log_stream": f"cromwell/default/{i:08d}",
        }


@dataclass
class MemoryLedger:
    """In-memory `RunReads` over stored items: the run, tasks (a list or a factory for a lazy
    stream), read through the ledger's typed records as `RunViews` reads them."""

    stored_run: dict[str, Any] | None
    stored_tasks: list[dict[str, Any]] = field(default_factory=list)
    task_factory: Any = None

    def run(self, workflow_id: str) -> RunView | None:
        return RunView.from_item(self.stored_run, workflow_id) if self.stored_run is not None else None

    def task(self, workflow_id: str, job_id: str) -> TaskView | None:
        item = next((t for t in self.stored_tasks if t.get("job_id") == job_id), None)
        return TaskView.from_item(item) if item is not None else None

    def tasks(self, workflow_id: str, attributes: Sequence[str] | None = None) -> Iterator[TaskView]:
        items = self.task_factory() if self.task_factory is not None else self.stored_tasks
        for item in items:
            yield TaskView.from_item(item)


@dataclass
class FakeStderr:
    files: dict[str, str] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)

    def tail(self, uri: str, lines: int) -> list[str] | None:
        self.reads.append(uri)
        if uri not in self.files:
            return None
        return self.files[uri].splitlines()[-lines:]


@dataclass
class RecordingSns:
    """Forwards to the moto client; records each publish; fails the first `fail` calls."""

    client: Any
    fail: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)

    def publish(self, **kwargs: Any) -> Any:
        if self.fail > 0:
            self.fail -= 1
            raise ClientError({"Error": {"Code": "InternalError", "Message": "SNS is down"}}, "Publish")
        self.calls.append(kwargs)
        return self.client.publish(**kwargs)


def valid_sns_subject(subject: str) -> bool:
    """What SNS accepts as an e-mail Subject: ASCII, no control characters, under 100 characters,
    not starting with a space."""
    return (
        0 < len(subject) < 100
        and all(32 <= ord(c) < 127 for c in subject)
        and subject == subject.strip()
        and not subject[0].isspace()
    )


@dataclass
class NotifyAws:
    """The AWS side of the notify function on moto (ledger table, topic, buckets, Secrets Manager)
    and Slack played by a local receiver."""

    ddb: Any
    sns: RecordingSns
    s3: Any
    secrets: Any
    topic_arn: str
    slack: SlackReceiver

    def compose(self, **env: str) -> Notifier:
        """The notifier over these clients, with the settings `env` adds to the ledger and topic."""
        settings = load_settings(
            NotifySettings, {"LEDGER_TABLE": TABLE, "TOPIC_ARN": self.topic_arn, "AWS_REGION": REGION, **env}
        )
        return compose(
            settings,
            dynamodb=self.ddb,
            sns=self.sns,
            s3=self.s3,
            secrets=self.secrets,
            slack_base_url=f"{self.slack.url}/api/",
            slack_backoff=0.01,
        )


@contextmanager
def notify_aws[T: NotifyAws](kind: type[T], *buckets: str) -> Iterator[T]:
    """`kind` built over a fresh moto account with `buckets` created; the receiver stopped after."""
    receiver = SlackReceiver().start()
    try:
        with mock_aws():
            ddb = boto3.client("dynamodb", region_name=REGION)
            create_table(ddb)
            sns = boto3.client("sns", region_name=REGION)
            topic = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
            s3 = boto3.client("s3", region_name=REGION)
            for bucket in buckets:
                s3.create_bucket(Bucket=bucket)
            secrets = boto3.client("secretsmanager", region_name=REGION)
            yield kind(ddb, RecordingSns(sns), s3, secrets, topic, receiver)
    finally:
        receiver.stop()


def invoke(notifier: Notifier, *items: Mapping[str, Any], first_sequence: int = 1) -> list[str]:
    """The notify handler over `items` as one stream batch: the failed records' ids."""
    result = lambda_handler(
        stream_event(*items, first_sequence=first_sequence), FakeContext(), notifier=notifier
    )
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]
