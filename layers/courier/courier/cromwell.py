"""Cromwell REST adapter: the one place that speaks HTTP to Cromwell.

Every call goes to `<base_url>/api/workflows/v1/...` (or `/engine/v1/...`) with TLS verification
on (pass `verify=<path of a CA bundle>` for Cromwell's own certificate), a connect/read timeout,
and retries with exponential backoff and full jitter on connection errors, timeouts, HTTP 429
and 5xx. A 4xx is never retried. Errors become the typed exceptions of `courier.errors`.

Behind a proxy that asks for credentials, a `CredentialSource` (`courier.cromwell_auth`) gives the
headers of every request. A refusal (401, or a 403 whose body is not Cromwell's own error shape:
Cromwell answers 403 for a workflow in a terminal state) reads the credential again and tries
once more at once; refused again, it raises `CromwellAuthError`, which is never retried.

`on_call`, when given, hears of every call once it is over (`CallOutcome`: operation, tries,
error): `courier.clients` counts them as metrics through it.

Submitting is safe to retry: Courier always sends `requestedWorkflowId`, so when a first attempt
reached Cromwell but its 201 was lost, the retry is answered 400 "Requested workflow IDs are
already in use" and raises `WorkflowIdInUse`, which the caller treats as success.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from courier.cromwell_auth import CredentialSource
from courier.errors import (
    CromwellAuthError,
    CromwellBadRequest,
    CromwellError,
    CromwellNotFound,
    CromwellUnavailable,
    WorkflowIdInUse,
)

API_PATH: Final = "/api/workflows/v1"
ENGINE_PATH: Final = "/engine/v1"
ID_IN_USE_MARKER: Final = "Requested workflow IDs are already in use"
STATUS_CHUNK: Final = 100
_MAX_ERROR_TEXT: Final = 500


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """One workflow submission; the fields map one to one onto Cromwell's multipart parts."""

    workflow_source: str = field(repr=False)
    workflow_inputs: str = field(repr=False)
    requested_workflow_id: str
    workflow_dependencies: bytes | None = field(default=None, repr=False)
    workflow_options: str | None = field(default=None, repr=False)
    labels: str | None = None
    workflow_type: str = "WDL"
    workflow_type_version: str | None = None
    on_hold: bool = False

    def parts(self) -> list[tuple[str, tuple[str | None, str | bytes, str]]]:
        """The multipart body in the shape `requests` takes for `files=`.

        File-like parts carry a filename and a content type; plain values are form fields.
        """
        out: list[tuple[str, tuple[str | None, str | bytes, str]]] = [
            ("workflowSource", ("workflow.wdl", self.workflow_source, "text/plain")),
            ("workflowInputs", ("inputs.json", self.workflow_inputs, "application/json")),
            ("workflowType", (None, self.workflow_type, "text/plain")),
            ("requestedWorkflowId", (None, self.requested_workflow_id, "text/plain")),
            ("workflowOnHold", (None, "true" if self.on_hold else "false", "text/plain")),
        ]
        if self.workflow_type_version is not None:
            out.append(("workflowTypeVersion", (None, self.workflow_type_version, "text/plain")))
        if self.workflow_options is not None:
            out.append(("workflowOptions", ("options.json", self.workflow_options, "application/json")))
        if self.labels is not None:
            out.append(("labels", ("labels.json", self.labels, "application/json")))
        if self.workflow_dependencies is not None:
            out.append(
                ("workflowDependencies", ("dependencies.zip", self.workflow_dependencies, "application/zip"))
            )
        return out


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """One call to Cromwell, over: `operation` is the method and the path's last segment
    (`POST query`, `GET status`), `tries` the requests sent, `error` what it raised (None: it
    succeeded)."""

    operation: str
    tries: int
    error: CromwellError | None = None


@dataclass(frozen=True, slots=True)
class SubmitResult:
    id: str
    status: str


@dataclass(frozen=True, slots=True)
class QueryResult:
    """One row of `/query`. Optional fields are None when Cromwell left them out."""

    id: str
    status: str
    name: str | None = None
    submission: str | None = None
    start: str | None = None
    end: str | None = None
    labels: Mapping[str, str] | None = None
    parent_workflow_id: str | None = None
    root_workflow_id: str | None = None

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> QueryResult:
        labels = row.get("labels")
        return cls(
            id=str(row["id"]),
            status=str(row["status"]),
            name=_opt_str(row.get("name")),
            submission=_opt_str(row.get("submission")),
            start=_opt_str(row.get("start")),
            end=_opt_str(row.get("end")),
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else None,
            parent_workflow_id=_opt_str(row.get("parentWorkflowId")),
            root_workflow_id=_opt_str(row.get("rootWorkflowId")),
        )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def redact_url(url: str) -> str:
    """Drop user:password and the query string, which may hold secrets, from a URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def error_from_response(response: requests.Response, url: str) -> CromwellError:
    """Turn a Cromwell error answer into a typed exception.

    Cromwell's body is `{"status": "fail"|"error", "message": ..., "errors": [...]}`; anything
    else (an HTML page from a proxy, empty body) is kept as text.
    """
    code = response.status_code
    cromwell_status: str | None = None
    errors: list[str] = []
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        message = str(body.get("message") or "").strip()
        raw_status = body.get("status")
        cromwell_status = str(raw_status) if raw_status is not None else None
        raw_errors = body.get("errors")
        if isinstance(raw_errors, list):
            errors = [str(e) for e in raw_errors]
        elif raw_errors:
            errors = [str(raw_errors)]
    else:
        message = (response.text or "").strip()[:_MAX_ERROR_TEXT]
    if not message:
        message = response.reason or f"HTTP {code}"

    kwargs: dict[str, Any] = {
        "http_status": code,
        "cromwell_status": cromwell_status,
        "errors": errors,
        "url": url,
    }
    if code == 400:
        if any(ID_IN_USE_MARKER in text for text in (message, *errors)):
            return WorkflowIdInUse(message, **kwargs)
        return CromwellBadRequest(message, **kwargs)
    if code == 404:
        return CromwellNotFound(message, **kwargs)
    if code == 429 or code >= 500:
        return CromwellUnavailable(message, **kwargs)
    return CromwellError(message, **kwargs)


def _retryable(code: int) -> bool:
    return code == 429 or code >= 500


def _refused_credentials(code: int, error: CromwellError) -> bool:
    """401, or a 403 that is not Cromwell's own ("workflow in terminal status" comes with
    Cromwell's `{"status": "error", ...}` body; a proxy's 403 does not)."""
    return code == 401 or (code == 403 and error.cromwell_status is None)


def _operation(method: str, path: str) -> str:
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return f"{method} {'workflows' if last == 'v1' else last}"


class CromwellClient:
    """Typed client of Cromwell's REST API (workflows v1 and engine v1).

    `session`, `sleep` and `rand` are injectable so tests run without the network or real waits.
    `verify` is True, False, a CA bundle's path, or a function giving one of these at each request
    (a rotated CA bundle is then used without a new client).
    Retrying: up to `max_attempts` tries; before try n+1 it sleeps a uniformly random time in
    `[0, min(backoff_max, backoff_base * 2**(n-1))]` ("full jitter"). After the last try it raises
    `CromwellUnavailable` with the URL (credentials removed), the last HTTP status and message.

    `submit` may be retried like any other call: the request always carries
    `requestedWorkflowId`, so if an earlier try created the workflow and only its answer was
    lost, the retry gets 400 "already in use" and raises `WorkflowIdInUse`. Callers treat that
    as a successful submission.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        verify: bool | str | Callable[[], bool | str] = True,
        credentials: CredentialSource | None = None,
        on_call: Callable[[CallOutcome], None] | None = None,
        timeout: tuple[float, float] = (5, 30),
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.session = session if session is not None else requests.Session()
        self.verify = verify
        self.credentials = credentials
        self.on_call = on_call
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._rand = rand

    def __repr__(self) -> str:
        return f"CromwellClient({redact_url(self.base_url)!r})"

    # -- workflows ---------------------------------------------------------------------------

    def submit(self, request: SubmitRequest) -> SubmitResult:
        body = self._json("POST", API_PATH, files=request.parts())
        return SubmitResult(id=str(body["id"]), status=str(body["status"]))

    def status(self, workflow_id: str) -> str:
        """The workflow's status. Right after a submit Cromwell may answer 404 for a few seconds:
        that raises `CromwellNotFound` like any unknown id; the caller decides what it means."""
        return str(self._json("GET", self._wf(workflow_id, "status"))["status"])

    def outputs(self, workflow_id: str) -> dict[str, Any]:
        outputs = self._json("GET", self._wf(workflow_id, "outputs")).get("outputs") or {}
        return dict(outputs)

    def metadata(
        self,
        workflow_id: str,
        include_keys: Sequence[str] = (),
        exclude_keys: Sequence[str] = (),
        *,
        expand_subworkflows: bool = False,
    ) -> dict[str, Any]:
        """Workflow metadata. Filter it: metadata of a large workflow is huge and slow."""
        params: list[tuple[str, str]] = [("includeKey", key) for key in include_keys]
        params += [("excludeKey", key) for key in exclude_keys]
        if expand_subworkflows:
            params.append(("expandSubWorkflows", "true"))
        return self._json("GET", self._wf(workflow_id, "metadata"), params=params)

    def failed_jobs(self, workflow_id: str) -> dict[str, Any]:
        return self._json("GET", self._wf(workflow_id, "metadata/failed-jobs"))

    def abort(self, workflow_id: str) -> str:
        """Ask Cromwell to abort; returns `Aborted` or `Aborting`. A finished or unknown workflow
        raises `CromwellNotFound`."""
        return str(self._json("POST", self._wf(workflow_id, "abort"))["status"])

    def labels(self, workflow_id: str) -> dict[str, str]:
        labels = self._json("GET", self._wf(workflow_id, "labels")).get("labels") or {}
        return {str(k): str(v) for k, v in dict(labels).items()}

    def patch_labels(self, workflow_id: str, labels: Mapping[str, str]) -> dict[str, str]:
        body = self._json("PATCH", self._wf(workflow_id, "labels"), json_body=dict(labels))
        return {str(k): str(v) for k, v in dict(body.get("labels") or {}).items()}

    def query(self, filters: Sequence[tuple[str, str]], *, page_size: int = 100) -> Iterator[QueryResult]:
        """Workflows matching `filters` (pairs such as `("status", "Running")`, `("label", "k:v")`),
        fetched page by page with POST /query until `totalResultsCount` rows were seen."""
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        base = [{key: value} for key, value in filters]
        page, seen = 1, 0
        while True:
            body = [*base, {"page": str(page)}, {"pageSize": str(page_size)}]
            answer = self._json("POST", f"{API_PATH}/query", json_body=body)
            rows = answer.get("results") or []
            total = int(answer.get("totalResultsCount") or 0)
            for row in rows:
                yield QueryResult.from_json(row)
            seen += len(rows)
            if not rows or seen >= total:
                return
            page += 1

    def statuses(self, workflow_ids: Sequence[str], *, chunk_size: int = STATUS_CHUNK) -> dict[str, str]:
        """Status of many workflows with as few /query calls as possible (`chunk_size` ids per
        call). Ids Cromwell does not know are absent from the result."""
        unique = list(dict.fromkeys(workflow_ids))
        found: dict[str, str] = {}
        for start in range(0, len(unique), chunk_size):
            chunk = unique[start : start + chunk_size]
            filters = [("id", wid) for wid in chunk]
            for row in self.query(filters, page_size=len(chunk)):
                found[row.id] = row.status
        return found

    # -- engine ------------------------------------------------------------------------------

    def version(self) -> str:
        return str(self._json("GET", f"{ENGINE_PATH}/version")["cromwell"])

    # -- transport ---------------------------------------------------------------------------

    def _wf(self, workflow_id: str, suffix: str) -> str:
        return f"{API_PATH}/{quote(workflow_id, safe='')}/{suffix}"

    def _json(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        json_body: Any = None,
        files: Any = None,
    ) -> dict[str, Any]:
        response = self._request(method, path, params=params, json_body=json_body, files=files)
        url = redact_url(self.base_url + path)
        try:
            body = response.json()
        except ValueError as exc:
            raise CromwellError(
                "Cromwell answered with a body that is not JSON", http_status=response.status_code, url=url
            ) from exc
        if not isinstance(body, dict):
            raise CromwellError(
                "Cromwell answered with JSON that is not an object", http_status=response.status_code, url=url
            )
        return body

    def backoff(self, attempt: int) -> float:
        """Delay before the try after `attempt` (1-based): full jitter under an exponential cap."""
        cap = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        return cap * self._rand()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]],
        json_body: Any,
        files: Any,
    ) -> requests.Response:
        tries: list[int] = [0]
        body = {"params": list(params) or None, "json": json_body, "files": files}
        try:
            response = self._send(method, path, body, tries)
        except CromwellError as exc:
            if self.on_call is not None:
                self.on_call(CallOutcome(_operation(method, path), tries[0], exc))
            raise
        if self.on_call is not None:
            self.on_call(CallOutcome(_operation(method, path), tries[0]))
        return response

    def _send(self, method: str, path: str, body: dict[str, Any], tries: list[int]) -> requests.Response:
        """The tries of one call; `tries[0]` counts the requests sent, whatever is raised."""
        url = self.base_url + path
        shown = redact_url(url)
        last: CromwellError | None = None
        credential = self.credentials.current() if self.credentials is not None else None
        refreshed = False
        attempt = 1
        while attempt <= self.max_attempts:
            tries[0] += 1
            try:
                response = self.session.request(
                    method,
                    url,
                    **body,
                    headers=credential.headers() if credential is not None else None,
                    timeout=self.timeout,
                    verify=self.verify() if callable(self.verify) else self.verify,
                )
            except requests.exceptions.SSLError as exc:
                raise CromwellUnavailable(f"TLS failure talking to Cromwell: {exc}", url=shown) from exc
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                last = CromwellUnavailable(f"{type(exc).__name__}: cannot reach Cromwell", url=shown)
            else:
                if response.status_code < 400:
                    return response
                error = error_from_response(response, shown)
                if _refused_credentials(response.status_code, error):
                    if self.credentials is not None and not refreshed:
                        # perhaps rotated since it was read: read it again and try once more now
                        credential, refreshed = self.credentials.refresh(), True
                        continue
                    raise self._auth_error(error) from error
                if not _retryable(response.status_code):
                    raise error
                last = error
            if attempt < self.max_attempts:
                self._sleep(self.backoff(attempt))
            attempt += 1
        # bandit B101: narrows the type for mypy; Lambda never runs Python with -O
        assert last is not None  # nosec B101
        raise CromwellUnavailable(
            f"Cromwell unavailable after {self.max_attempts} attempts: {last.message}",
            http_status=last.http_status,
            cromwell_status=last.cromwell_status,
            errors=last.errors,
            url=shown,
        ) from last

    def _auth_error(self, refused: CromwellError) -> CromwellAuthError:
        name = self.credentials.name if self.credentials is not None else ""
        if name:
            message = f"Cromwell refused Courier's credentials: check the secret {name}"
        else:
            message = (
                "Cromwell asks for credentials and none are configured: "
                "set the stack parameter CromwellAuthSecretArn"
            )
        return CromwellAuthError(message, secret=name, http_status=refused.http_status, url=refused.url)
