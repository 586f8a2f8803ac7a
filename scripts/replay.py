"""Replay parked events: read a queue of events that could not be processed (the submit
function's on-failure destination, an EventBridge target's dead-letter queue, or the dead-letter
queue of the rows of sample sheets), invoke the function with each original event (a row as the
SQS event the rows function takes), and delete a message only after its invocation succeeded.

    python scripts/replay.py --queue-url URL --function NAME [--max N] [--dry-run]

Safe to run more than once: submit derives the workflow id from the upload (a row's from its
sheet's upload and its line), so an event that was in fact handled before is recognised and
submits nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3


@dataclass
class ReplayReport:
    replayed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


#: The `kind` of a sample-sheet row message (submit.sheet_service.ROW_MESSAGE_KIND).
ROW_MESSAGE_KIND = "courier-sheet-row"


def original_event(body: str) -> dict[str, Any] | None:
    """The event inside a parked message: Lambda's on-failure record keeps it under
    `requestPayload`; an EventBridge dead-letter message is the event itself; a row of a sample
    sheet becomes the one-record SQS event its rows function takes."""
    try:
        message = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    if message.get("kind") == ROW_MESSAGE_KIND:
        return {
            "Records": [
                {
                    "messageId": f"replay-{message.get('sheet_id')}-{message.get('line')}",
                    "receiptHandle": "replay",
                    "body": body,
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                }
            ]
        }
    payload = message.get("requestPayload")
    if isinstance(payload, dict):
        return payload
    if "detail-type" in message and "detail" in message:
        return message
    return None


def replay(
    sqs: Any,
    invoke: Callable[[dict[str, Any]], bool],
    queue_url: str,
    *,
    max_messages: int = 1000,
    dry_run: bool = False,
) -> ReplayReport:
    """Drain up to `max_messages` from the queue. `invoke(event)` returns True on success."""
    report = ReplayReport()
    seen = 0
    while seen < max_messages:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, max_messages - seen),
            WaitTimeSeconds=1,
            VisibilityTimeout=300,
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            seen += 1
            event = original_event(message.get("Body", ""))
            if event is None:
                report.skipped += 1
                report.errors.append(
                    f"message {message.get('MessageId')}: no event inside; left in the queue"
                )
                continue
            if dry_run:
                report.skipped += 1
                continue
            if invoke(event):
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                report.replayed += 1
            else:
                report.failed += 1
                report.errors.append(
                    f"message {message.get('MessageId')}: the function failed again; left in the queue"
                )
    return report


def lambda_invoker(client: Any, function_name: str) -> Callable[[dict[str, Any]], bool]:
    def invoke(event: dict[str, Any]) -> bool:
        answer = client.invoke(
            FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
        )
        if int(answer.get("StatusCode", 500)) != 200 or "FunctionError" in answer:
            return False
        return not _items_failed(answer.get("Payload"))

    return invoke


def _items_failed(payload: Any) -> bool:
    """True when an SQS-event function's answer reports a record it could not process."""
    try:
        result = json.loads(payload.read()) if payload is not None else None
    except (AttributeError, ValueError):
        return False
    return isinstance(result, dict) and bool(result.get("batchItemFailures"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--function", required=True, help="function name or ARN to invoke")
    parser.add_argument("--max", type=int, default=1000)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    if not args.queue_url or not args.function:
        parser.error("--queue-url and --function are required")
    report = replay(
        boto3.client("sqs"),
        lambda_invoker(boto3.client("lambda"), args.function),
        args.queue_url,
        max_messages=args.max,
        dry_run=args.dry_run,
    )
    print(f"replayed {report.replayed}, failed {report.failed}, skipped {report.skipped}")
    for line in report.errors:
        print("  " + line)
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
