"""Cromwell's completion callback as it reaches a Lambda function URL (payload format 2.0),
checked in this order: request shape, method, token, size, JSON, body shape. Pure functions: no I/O.

* The request is parsed with Powertools' `LambdaFunctionUrlModel`; anything else -> 400.

* The token travels in the query string: `<function URL>callback?token=<secret>` (Cromwell sends
  no authorization header). Compared with `hmac.compare_digest`. Missing or wrong -> 403.
* The body is bounded (`max_bytes`, 256 KiB by default): the Content-Length header, the
  base64 text before decoding and the decoded bytes are all checked. Too large -> 413.
* Not JSON, or not `{"workflowId", "state", "outputs", "failures"}` with a UUID id and a state
  in Succeeded/Failed/Aborted -> 400.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import LambdaFunctionUrlModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class CallbackBody(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    workflow_id: UUID = Field(alias="workflowId")
    state: Literal["Succeeded", "Failed", "Aborted"]
    outputs: dict[str, Any]
    failures: list[Any]


@dataclass(frozen=True, slots=True)
class Refusal:
    status_code: int
    message: str


def _header(request: LambdaFunctionUrlModel, name: str) -> str | None:
    for key, value in request.headers.items():
        if key.lower() == name:
            return value
    return None


def _token(request: LambdaFunctionUrlModel) -> str | None:
    value = (request.queryStringParameters or {}).get("token")
    return value or None


def read_callback(event: Any, expected_token: str, max_bytes: int) -> CallbackBody | Refusal:
    """The validated body, or why the request is refused (nothing may be written then)."""
    try:
        request: LambdaFunctionUrlModel = parse(event=event, model=LambdaFunctionUrlModel)
    except (ValidationError, TypeError, ValueError):
        return Refusal(400, "not a function URL request")
    refused = _check_access(request, expected_token)
    if refused is not None:
        return refused
    data = _body_bytes(request, max_bytes)
    if isinstance(data, Refusal):
        return data
    try:
        parsed = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return Refusal(400, "body is not JSON")
    try:
        return CallbackBody.model_validate(parsed)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()[:5]
        )
        return Refusal(400, f"unexpected callback shape: {problems}")


def _check_access(request: LambdaFunctionUrlModel, expected_token: str) -> Refusal | None:
    if request.requestContext.http.method != "POST":
        return Refusal(405, "use POST")
    token = _token(request)
    if not expected_token or token is None:
        return Refusal(403, "forbidden")
    if not hmac.compare_digest(token.encode("utf-8"), expected_token.encode("utf-8")):
        return Refusal(403, "forbidden")
    return None


def _declared_length(request: LambdaFunctionUrlModel) -> int | Refusal | None:
    length = _header(request, "content-length")
    if length is None:
        return None
    if not length.strip().isdigit():
        return Refusal(400, "bad Content-Length")
    return int(length)


def _body_bytes(request: LambdaFunctionUrlModel, max_bytes: int) -> bytes | Refusal:
    too_large = Refusal(413, f"body larger than {max_bytes} bytes")
    declared = _declared_length(request)
    if isinstance(declared, Refusal) or (declared is not None and declared > max_bytes):
        return declared if isinstance(declared, Refusal) else too_large
    raw = request.body
    if not isinstance(raw, str) or not raw:
        return Refusal(400, "empty body")
    if request.isBase64Encoded:
        if len(raw) > 4 * ((max_bytes + 2) // 3) + 4:
            return too_large  # refused before decoding anything
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return Refusal(400, "body is not valid base64")
    else:
        if len(raw) > max_bytes:  # characters <= bytes: a cheap first bound
            return too_large
        data = raw.encode("utf-8")
    return too_large if len(data) > max_bytes else data
