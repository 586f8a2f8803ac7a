"""The functions' handlers, imported in this process, with their collaborators put together by
the same composition functions their `default_service` calls (`submit.composition`,
`monitor.composition`), but from the function's resolved environment (not this process's) and
with boto3 clients pointed at the local moto server. The handlers receive them through their
keyword arguments (`service=`, `notifier=`), as the tests do.

It also builds the Lambda-shaped events the router hands them, and a Lambda context.
"""

from __future__ import annotations

import base64
import importlib
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

ClientFactory = Callable[[str], Any]


class Context:
    """A Lambda context for the Powertools decorators."""

    def __init__(self, function_name: str, region: str, account: str, timeout: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline_ms = timeout * 1000

    def get_remaining_time_in_millis(self) -> int:
        return self._deadline_ms


def handler_function(handler: str) -> Callable[..., Any]:
    module, _, name = handler.rpartition(".")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def _secret_reader(clients: ClientFactory) -> Any:
    from courier.secrets import SecretReader  # noqa: PLC0415

    return SecretReader(ssm_client=clients("ssm"), secrets_client=clients("secretsmanager"))


def _submit_service(env: Mapping[str, str], clients: ClientFactory) -> tuple[Any, Any]:
    """The submit function's settings (with the sample-sheet ones) and its inputs-file service."""
    from courier.settings import load_settings  # noqa: PLC0415
    from submit.composition import compose  # noqa: PLC0415
    from submit.sheet_settings import SheetSettings  # noqa: PLC0415

    settings = load_settings(SheetSettings, env)
    service = compose(
        settings, s3=clients("s3"), dynamodb=clients("dynamodb"), secrets=_secret_reader(clients)
    )
    return settings, service


def _submit(env: Mapping[str, str], clients: ClientFactory) -> dict[str, Any]:
    from submit.sheet_composition import build_rerun_service, build_sheet_service  # noqa: PLC0415

    settings, service = _submit_service(env, clients)
    sheets = build_sheet_service(
        settings, service, s3=clients("s3"), dynamodb=clients("dynamodb"), sqs=clients("sqs")
    )
    reruns = build_rerun_service(settings, service, sheets, s3=clients("s3"), dynamodb=clients("dynamodb"))
    return {"service": service, "sheets": sheets, "reruns": reruns}


def _rows(env: Mapping[str, str], clients: ClientFactory) -> dict[str, Any]:
    from submit.sheet_composition import build_row_service  # noqa: PLC0415

    settings, service = _submit_service(env, clients)
    rows = build_row_service(
        settings, service, s3=clients("s3"), dynamodb=clients("dynamodb"), sqs=clients("sqs")
    )
    return {"service": rows}


def _monitor(env: Mapping[str, str], clients: ClientFactory) -> dict[str, Any]:
    from courier.batch import JobTagReader  # noqa: PLC0415
    from monitor.composition import compose_batch_events  # noqa: PLC0415

    service = compose_batch_events(
        environ=env,
        dynamodb=clients("dynamodb"),
        tags=JobTagReader(clients("batch")),
    )
    return {"service": service}


def _callback(env: Mapping[str, str], clients: ClientFactory) -> dict[str, Any]:
    from monitor.composition import compose_callback  # noqa: PLC0415

    service = compose_callback(environ=env, dynamodb=clients("dynamodb"), secrets=_secret_reader(clients))
    return {"service": service}


def _reconciler(env: Mapping[str, str], clients: ClientFactory) -> dict[str, Any]:
    from monitor.composition import compose_reconciler  # noqa: PLC0415

    service = compose_reconciler(environ=env, dynamodb=clients("dynamodb"), secrets=_secret_reader(clients))
    return {"service": service}


def _notify(
    env: Mapping[str, str], clients: ClientFactory, *, slack_base_url: str | None = None
) -> dict[str, Any]:
    """`slack_base_url`: where a bot token's Web API calls go (the stack's Slack receiver)."""
    from courier.settings import load_settings  # noqa: PLC0415
    from notify.composition import compose  # noqa: PLC0415
    from notify.settings import NotifySettings  # noqa: PLC0415

    notifier = compose(
        load_settings(NotifySettings, env),
        dynamodb=clients("dynamodb"),
        sns=clients("sns"),
        s3=clients("s3"),
        secrets=clients("secretsmanager"),
        slack_base_url=slack_base_url,
        slack_backoff=0.05,
    )
    return {"notifier": notifier}


#: How each handler of the template is given its collaborators. A handler not listed is called
#: without injection (its own default wiring, which honours AWS_ENDPOINT_URL).
WIRING: dict[str, Callable[..., dict[str, Any]]] = {
    "submit.handler.lambda_handler": _submit,
    "submit.rows.lambda_handler": _rows,
    "monitor.batch_events.lambda_handler": _monitor,
    "monitor.callback.lambda_handler": _callback,
    "monitor.schedule.lambda_handler": _reconciler,
    "notify.handler.lambda_handler": _notify,
}


# -- Lambda event shapes -------------------------------------------------------------------------


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS batch as Lambda's SQS event source delivers it."""
    records = []
    for message in messages:
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes") or {}),
                "messageAttributes": {},
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def _plain_attribute(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {k: _plain_attribute(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_attribute(v) for v in value]
    return value


def stream_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A DynamoDB stream record (from GetRecords) as Lambda's stream event source delivers it."""
    out = _plain_attribute(dict(record))
    dynamodb = dict(out.get("dynamodb") or {})
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    out["dynamodb"] = dynamodb
    out["eventSourceARN"] = stream_arn
    return dict(out)


def function_url_event(
    method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, host: str
) -> dict[str, Any]:
    """A Lambda function URL request (payload format 2.0)."""
    from urllib.parse import parse_qsl  # noqa: PLC0415

    now = datetime.now().astimezone()
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        text = body.decode("utf-8")
        encoded = False
    except UnicodeDecodeError:
        text = base64.b64encode(body).decode("ascii")
        encoded = True
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".", maxsplit=1)[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S %z"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = dict(parse_qsl(query, keep_blank_values=True))
    if body:
        event["body"] = text
    return event


def destination_record(
    event: Mapping[str, Any], error: BaseException, function_arn: str, attempts: int
) -> str:
    """The record Lambda sends to an asynchronous invocation's on-failure destination."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": datetime.now().astimezone().isoformat(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"{function_arn}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
        }
    )
