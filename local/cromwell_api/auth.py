"""A proxy's credential check in front of the local Cromwell-compatible API, as sites put one in
front of Cromwell: nginx with basic auth, a load balancer that wants a bearer token, an API
gateway that wants a key in a named header.

    required = RequiredAuth.basic("courier", "s3cret")
    with CromwellTestServer(auth=required) as server: ...
    server.auth.rotate(RequiredAuth.basic("courier", "n3w"))   # the old credential is refused now

Refusals look like the proxies' own, so that Courier's client meets what it meets in AWS: 401
with `WWW-Authenticate` and an HTML page for basic (nginx), 401 with `WWW-Authenticate: Bearer`
and no Cromwell body for bearer, 403 `{"message": "Forbidden"}` for a header (API Gateway).
Credentials are compared in constant time. A local tool, not deployed.
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["basic", "bearer", "header"]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class RequiredAuth:
    """One credential the proxy accepts. `secret_json()` is the same credential in the shape
    Courier reads from Secrets Manager (docs/deploy.md)."""

    kind: Kind
    first: str = field(repr=False)  # username, token, or header name
    second: str = field(default="", repr=False)  # password, or header value

    @classmethod
    def basic(cls, username: str, password: str) -> RequiredAuth:
        return cls("basic", username, password)

    @classmethod
    def bearer(cls, token: str) -> RequiredAuth:
        return cls("bearer", token)

    @classmethod
    def header(cls, name: str, value: str) -> RequiredAuth:
        return cls("header", name, value)

    @classmethod
    def parse(cls, spec: str) -> RequiredAuth:
        """`basic:<user>:<password>`, `bearer:<token>` or `header:<name>:<value>` (a command
        line's option)."""
        kind, _, rest = spec.partition(":")
        if kind == "bearer" and rest:
            return cls.bearer(rest)
        first, _, second = rest.partition(":")
        if kind == "basic" and first and second:
            return cls.basic(first, second)
        if kind == "header" and first and second:
            return cls.header(first, second)
        raise ValueError("expected basic:<user>:<password>, bearer:<token> or header:<name>:<value>")

    def secret_json(self) -> str:
        if self.kind == "basic":
            return json.dumps({"type": "basic", "username": self.first, "password": self.second})
        if self.kind == "bearer":
            return json.dumps({"type": "bearer", "token": self.first})
        return json.dumps({"type": "header", "name": self.first, "value": self.second})

    def accepts(self, environ: Mapping[str, Any]) -> bool:
        if self.kind == "header":
            given = environ.get("HTTP_" + self.first.upper().replace("-", "_"))
            return isinstance(given, str) and _same(given, self.second)
        authorization = environ.get("HTTP_AUTHORIZATION")
        if not isinstance(authorization, str):
            return False
        scheme, _, value = authorization.partition(" ")
        if self.kind == "bearer":
            return scheme.lower() == "bearer" and _same(value.strip(), self.first)
        if scheme.lower() != "basic":
            return False
        expected = base64.b64encode(f"{self.first}:{self.second}".encode()).decode("ascii")
        return _same(value.strip(), expected)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class RequireAuth:
    """WSGI middleware: passes a request to `app` only with the credential `required` asks for.
    `accepted` and `refused` count requests; `rotate` changes the credential while serving."""

    def __init__(self, app: WsgiApp, required: RequiredAuth) -> None:
        self.app = app
        self.required = required
        self.accepted = 0
        self.refused = 0
        self._lock = threading.Lock()

    def rotate(self, required: RequiredAuth) -> None:
        with self._lock:
            self.required = required

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        with self._lock:
            required = self.required
            ok = required.accepts(environ)
            if ok:
                self.accepted += 1
            else:
                self.refused += 1
        if ok:
            return self.app(environ, start_response)
        status, headers, body = _refusal(required.kind)
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]


def _refusal(kind: Kind) -> tuple[str, list[tuple[str, str]], bytes]:
    if kind == "basic":
        page = b"<html><head><title>401 Authorization Required</title></head><body>nginx</body></html>"
        return (
            "401 Unauthorized",
            [("WWW-Authenticate", 'Basic realm="Cromwell"'), ("Content-Type", "text/html")],
            page,
        )
    if kind == "bearer":
        return (
            "401 Unauthorized",
            [("WWW-Authenticate", 'Bearer error="invalid_token"'), ("Content-Type", "text/plain")],
            b"Unauthorized",
        )
    return "403 Forbidden", [("Content-Type", "application/json")], b'{"message":"Forbidden"}'
