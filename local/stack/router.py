"""The router: what Lambda's event sources do in AWS, done in this process.

- EventBridge rules whose target is a function deliver to a stand-in SQS queue; the router takes
  each event off it and invokes the function asynchronously (one event per invocation, retried
  `MaximumRetryAttempts` times, then sent to the on-failure destination queue).
- SQS event sources: batches of up to `BatchSize` messages as the SQS event; with
  `ReportBatchItemFailures`, only the reported messages stay on the queue (visible again after a
  short local delay instead of the queue's visibility timeout).
- DynamoDB stream event sources: records from `LATEST`, filtered with the source's
  `FilterCriteria`, in batches of `BatchSize`; a failed batch is retried from the first failed
  record up to `MaximumRetryAttempts`, then described on the on-failure destination queue.
- Schedules: the function is invoked with a Scheduled Event every period.
- Function URLs: a loopback HTTP server turns each request into a function URL event.

Every stream record (filtered or not) and every invocation is also reported to `observe`, which
is how the timeline sees the run's story.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from local.stack.filters import compile_filters, passes
from local.stack.loopback import LoopbackServer, QuietHandler
from local.stack.polling import IdleBackoff
from local.stack.resources import EventSource, FunctionSpec, Provisioned, schedule_seconds
from local.stack.wiring import (
    WIRING,
    ClientFactory,
    Context,
    destination_record,
    function_url_event,
    handler_function,
    sqs_event,
    stream_record,
)

Observer = Callable[[str, dict[str, Any]], None]


class FunctionUrlServer(LoopbackServer):
    """A function URL on loopback. `target` is set once the function is wired."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.target: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        outer = self

        class Handler(QuietHandler):
            def _serve(self) -> None:
                body = self.request_body()
                if outer.target is None:
                    self.send_response(503)
                    self.end_headers()
                    return
                parts = urlsplit(self.path)
                event = function_url_event(
                    self.command,
                    parts.path,
                    parts.query,
                    dict(self.headers.items()),
                    body,
                    f"{outer.host}:{outer.port}",
                )
                try:
                    answer = outer.target(event)
                except Exception as exc:  # a function error answers 502, as a function URL does
                    answer = {"statusCode": 502, "body": json.dumps({"message": str(exc)})}
                status = int(answer.get("statusCode", 200)) if isinstance(answer, dict) else 200
                text = answer.get("body", "") if isinstance(answer, dict) else json.dumps(answer)
                payload = text.encode("utf-8") if isinstance(text, str) else b""
                self.send_response(status)
                headers = answer.get("headers") or {} if isinstance(answer, dict) else {}
                for key, value in headers.items():
                    self.send_header(key, str(value))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = _serve
            do_GET = _serve
            do_PUT = _serve

        super().__init__(Handler, name="function-url", host=host, port=port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"


class Router:
    def __init__(
        self,
        provisioned: Provisioned,
        clients: ClientFactory,
        *,
        function_clients: Callable[[str], ClientFactory] | None = None,
        region: str,
        account: str,
        observe: Observer,
        url_servers: Mapping[str, FunctionUrlServer],
        schedule_override: float | None = None,
        poll_seconds: float = 0.05,
        idle_seconds: float = 0.4,
        retry_seconds: float = 0.3,
        max_batching_window: float = 0.3,
        submit_workers: int = 8,
        wiring_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.p = provisioned
        #: Keywords for a handler's wiring (`local.stack.wiring.WIRING`), by handler.
        self.wiring_options = dict(wiring_options or {})
        self.clients = clients
        #: The clients each function's collaborators are built with (default: the router's own).
        self.function_clients = function_clients or (lambda _function: clients)
        self.region = region
        self.account = account
        self.observe = observe
        self.url_servers = url_servers
        self.schedule_override = schedule_override
        self.poll_seconds = poll_seconds
        self.idle_seconds = idle_seconds
        self.retry_seconds = retry_seconds
        self.max_batching_window = max_batching_window
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool = ThreadPoolExecutor(max_workers=submit_workers, thread_name_prefix="async-invoke")
        self._busy = 0
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._kwargs: dict[str, dict[str, Any]] = {}
        self._stream_positions: dict[str, dict[str, str]] = {}

    # -- wiring -----------------------------------------------------------------------------

    def _environment(self, spec: FunctionSpec) -> dict[str, str]:
        return {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region, **spec.environment}

    def wire(self) -> None:
        for logical_id, spec in self.p.functions.items():
            self._handlers[logical_id] = handler_function(spec.handler)
            build = WIRING.get(spec.handler)
            self._kwargs[logical_id] = (
                build(
                    self._environment(spec),
                    self.function_clients(logical_id),
                    **self.wiring_options.get(spec.handler, {}),
                )
                if build
                else {}
            )
            if spec.url and logical_id in self.url_servers:
                self.url_servers[logical_id].target = self._url_target(logical_id)

    def invoke(self, logical_id: str, event: dict[str, Any], source: str = "direct") -> Any:
        spec = self.p.functions[logical_id]
        context = Context(logical_id, self.region, self.account, spec.timeout)
        with self._lock:
            self._busy += 1
            self._running[logical_id] = self._running.get(logical_id, 0) + 1
        try:
            result = self._handlers[logical_id](event, context, **self._kwargs[logical_id])
        except Exception as exc:
            self.observe("error", {"function": logical_id, "source": source, "event": event, "error": exc})
            raise
        finally:
            with self._lock:
                self._busy -= 1
                self._running[logical_id] -= 1
        self.observe("invoke", {"function": logical_id, "source": source, "event": event, "result": result})
        return result

    def _url_target(self, logical_id: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def target(event: dict[str, Any]) -> dict[str, Any]:
            answer = self.invoke(logical_id, event, "url")
            return answer if isinstance(answer, dict) else {"statusCode": 200, "body": json.dumps(answer)}

        return target

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self.wire()
        for logical_id, spec in self.p.functions.items():
            for source in spec.sources:
                runner = {
                    "eventbridge": self._run_bridge,
                    "queue": self._run_queue,
                    "stream": self._run_stream,
                    "schedule": self._run_schedule,
                }.get(source.kind)
                if runner is None:
                    continue
                if source.kind == "stream":
                    self._stream_positions[f"{logical_id}.{source.name}"] = self._latest(source)
                thread = threading.Thread(
                    target=self._guard,
                    args=(runner, spec, source),
                    name=f"{logical_id}.{source.name}",
                    daemon=True,
                )
                self._threads.append(thread)
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def busy(self) -> bool:
        with self._lock:
            return self._busy > 0

    def queues_drained(self) -> bool:
        """True when every SQS event source's queue is empty and its function is not running."""
        sqs = self.clients("sqs")
        for logical_id, spec in self.p.functions.items():
            for source in spec.sources:
                if source.kind != "queue":
                    continue
                with self._lock:
                    if self._running.get(logical_id, 0):
                        return False
                counts = sqs.get_queue_attributes(
                    QueueUrl=source.queue_url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                if any(int(v) for v in counts.values()):
                    return False
        return True

    def _guard(
        self, runner: Callable[[FunctionSpec, EventSource], None], spec: FunctionSpec, source: EventSource
    ) -> None:
        while not self._stop.is_set():
            try:
                runner(spec, source)
                return
            except Exception as exc:
                if self._stop.is_set():
                    return
                self.observe("error", {"function": spec.logical_id, "source": source.name, "error": exc})
                self._stop.wait(self.retry_seconds)

    # -- EventBridge -> function (asynchronous invocation) ----------------------------------

    def _backoff(self) -> IdleBackoff:
        return IdleBackoff(self._stop, self.poll_seconds, self.idle_seconds)

    def _run_bridge(self, spec: FunctionSpec, source: EventSource) -> None:
        sqs = self.clients("sqs")
        backoff = self._backoff()
        while not self._stop.is_set():
            messages = sqs.receive_message(
                QueueUrl=source.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                backoff.idle()
                continue
            backoff.delivered()
            for message in messages:
                event = json.loads(message["Body"])
                with self._lock:
                    self._busy += 1
                sqs.delete_message(QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"])
                self._pool.submit(self._invoke_async, spec, source, event)

    def _invoke_async(self, spec: FunctionSpec, source: EventSource, event: dict[str, Any]) -> None:
        try:
            attempts = 0
            while True:
                attempts += 1
                try:
                    self.invoke(spec.logical_id, event, source.name)
                    return
                except Exception as exc:
                    if attempts > spec.retry_attempts or self._stop.is_set():
                        if spec.on_failure_queue_url:
                            arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{spec.logical_id}"
                            self.clients("sqs").send_message(
                                QueueUrl=spec.on_failure_queue_url,
                                MessageBody=destination_record(event, exc, arn, attempts),
                            )
                        return
                    self._stop.wait(self.retry_seconds)
        finally:
            with self._lock:
                self._busy -= 1

    # -- SQS -> function (batches) ----------------------------------------------------------

    def _run_queue(self, spec: FunctionSpec, source: EventSource) -> None:
        sqs = self.clients("sqs")
        batch_size = int(source.properties.get("BatchSize", 10))
        window = min(
            float(source.properties.get("MaximumBatchingWindowInSeconds", 0)), self.max_batching_window
        )
        partial = "ReportBatchItemFailures" in (source.properties.get("FunctionResponseTypes") or [])
        queue_arn = str(source.properties.get("Queue", ""))
        backoff = self._backoff()
        while not self._stop.is_set():
            messages: list[dict[str, Any]] = []
            deadline = time.monotonic() + window
            while len(messages) < batch_size and not self._stop.is_set():
                got = sqs.receive_message(
                    QueueUrl=source.queue_url,
                    MaxNumberOfMessages=min(10, batch_size - len(messages)),
                    AttributeNames=["All"],
                    WaitTimeSeconds=0,
                ).get("Messages", [])
                messages.extend(got)
                if not got and (not messages or time.monotonic() >= deadline):
                    break
                if not got:
                    time.sleep(min(self.poll_seconds, max(0.0, deadline - time.monotonic())))
            if not messages:
                backoff.idle()
                continue
            backoff.delivered()
            event = sqs_event(messages, queue_arn, self.region)
            try:
                result = self.invoke(spec.logical_id, event, source.name)
                failed = {
                    item.get("itemIdentifier")
                    for item in ((result or {}).get("batchItemFailures") or [] if partial else [])
                }
            except Exception:
                failed = {m["MessageId"] for m in messages}
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                sqs.delete_message_batch(
                    QueueUrl=source.queue_url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                        for n, m in enumerate(done[start : start + 10])
                    ],
                )
            for message in messages:
                if message["MessageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=source.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=max(1, round(self.retry_seconds)),
                    )

    # -- DynamoDB stream -> function ----------------------------------------------------------

    def _latest(self, source: EventSource) -> dict[str, str]:
        streams = self.clients("dynamodbstreams")
        shards = streams.describe_stream(StreamArn=source.stream_arn)["StreamDescription"]["Shards"]
        position = str(source.properties.get("StartingPosition", "LATEST"))
        return {
            shard["ShardId"]: streams.get_shard_iterator(
                StreamArn=source.stream_arn, ShardId=shard["ShardId"], ShardIteratorType=position
            )["ShardIterator"]
            for shard in shards
        }

    def _run_stream(self, spec: FunctionSpec, source: EventSource) -> None:
        streams = self.clients("dynamodbstreams")
        iterators = self._stream_positions[f"{spec.logical_id}.{source.name}"]
        patterns = compile_filters(source.properties.get("FilterCriteria"))
        batch_size = int(source.properties.get("BatchSize", 100))
        backoff = self._backoff()
        while not self._stop.is_set():
            delivered = False
            for shard, iterator in list(iterators.items()):
                answer = streams.get_records(ShardIterator=iterator, Limit=1000)
                iterators[shard] = answer.get("NextShardIterator") or iterator
                records = [stream_record(r, source.stream_arn) for r in answer.get("Records", [])]
                if not records:
                    continue
                delivered = True
                with self._lock:
                    self._busy += 1
                try:
                    for record in records:
                        self.observe("stream", {"function": spec.logical_id, "record": record})
                    chosen = [r for r in records if passes(r, patterns)]
                    for start in range(0, len(chosen), batch_size):
                        self._deliver_stream(spec, source, chosen[start : start + batch_size])
                finally:
                    with self._lock:
                        self._busy -= 1
            backoff.after(bool(delivered))

    def _deliver_stream(self, spec: FunctionSpec, source: EventSource, records: list[dict[str, Any]]) -> None:
        max_retries = int(source.properties.get("MaximumRetryAttempts", 10_000))
        partial = "ReportBatchItemFailures" in (source.properties.get("FunctionResponseTypes") or [])
        attempts = 0
        while records and not self._stop.is_set():
            try:
                result = self.invoke(spec.logical_id, {"Records": records}, source.name)
                failures = [
                    str(item.get("itemIdentifier"))
                    for item in ((result or {}).get("batchItemFailures") or [] if partial else [])
                ]
            except Exception:
                failures = [records[0]["dynamodb"]["SequenceNumber"]]
            if not failures:
                return
            numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
            first = min((numbers.index(f) for f in failures if f in numbers), default=0)
            records = records[first:]
            attempts += 1
            if attempts > max_retries:
                destination = ((source.properties.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
                    "Destination"
                )
                url = self.p.queue_arns.get(str(destination)) if destination else None
                if url:
                    self.clients("sqs").send_message(
                        QueueUrl=url,
                        MessageBody=json.dumps(
                            {
                                "requestContext": {"condition": "RetryAttemptsExhausted"},
                                "DDBStreamBatchInfo": {
                                    "streamArn": source.stream_arn,
                                    "startSequenceNumber": numbers[first],
                                    "endSequenceNumber": numbers[-1],
                                    "batchSize": len(records),
                                },
                            }
                        ),
                    )
                return
            self._stop.wait(self.retry_seconds)

    # -- schedules --------------------------------------------------------------------------

    def scheduled_event(self, spec: FunctionSpec, source: EventSource) -> dict[str, Any]:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [f"arn:aws:events:{self.region}:{self.account}:rule/{spec.logical_id}{source.name}"],
            "detail": {},
        }

    def _run_schedule(self, spec: FunctionSpec, source: EventSource) -> None:
        period = self.schedule_override or schedule_seconds(str(source.properties["Schedule"]))
        while not self._stop.wait(period):
            with contextlib.suppress(Exception):  # reported through observe; the next tick retries
                self.invoke(spec.logical_id, self.scheduled_event(spec, source), source.name)
