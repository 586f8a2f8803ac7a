"""The WSGI application of the local Cromwell-compatible server (a test and local-stack tool).

Each request is matched to an operation of Cromwell's Swagger spec, checked against that
operation's parameters and Cromwell's own rules, answered from a `Backend`, and logged.
Faults (error answers, delays, dropped answers) can be injected per operation.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml  # type: ignore[import-untyped]
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.wrappers import Request, Response

from local.cromwell_api.backend import Backend, IdInUse, NotOnHold, Workflow
from local.cromwell_api.describe import describe
from local.cromwell_api.rules import (
    IN_USE_MESSAGE,
    Rejection,
    check_labels,
    check_workflow_id,
    parse_submissions,
)
from local.cromwell_api.spec import CromwellSpec, Operation, RequestParts
from local.cromwell_api.views import (
    expand_subworkflows,
    failed_jobs,
    filter_metadata,
    parse_query,
    run_query,
    timing_page,
    workflow_logs,
)

LOCAL_VERSION = "92-courier-local"
#: The backend Cromwell on AWS Batch names in its configuration and in call metadata.
BACKEND_NAME = "AWSBatch"

#: Where Cromwell serves its Swagger spec; a Swagger UI is pointed there.
SPEC_ROUTE = "/swagger/cromwell.yaml"
#: Cross-origin headers on every answer, so that a Swagger UI served from another origin (another
#: loopback port) can call this server from a browser. A local tool: nothing secret is served.
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PATCH, OPTIONS",
    "Access-Control-Allow-Headers": "accept, content-type, authorization",
}

Answer = tuple[int, Any]


@dataclass(frozen=True, slots=True)
class Html:
    """An answer that is an HTML page rather than JSON (the timing diagram)."""

    text: str


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request as the server saw it, and its answer."""

    method: str
    path: str
    operation: str | None
    query: tuple[tuple[str, str], ...]
    parts: tuple[str, ...]
    body: Any
    status: int
    response: Any
    injected: bool = False


@dataclass
class Fault:
    kind: str  # "fail", "delay" or "drop"
    remaining: int
    operation: str | None = None
    status: int = 503
    seconds: float = 0.0
    message: str = "Cromwell is unavailable (injected fault)"


class Faults:
    """Injected misbehaviour, consumed one request at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, kind: str, operation: str | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.remaining > 0 and fault.operation in (None, operation):
                    fault.remaining -= 1
                    return fault
            return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


def _fail(status: int, message: str, errors: Iterable[str] = (), *, kind: str | None = None) -> Answer:
    """Cromwell's error body. `kind` is "fail" or "error"; by default "fail" below 500: Cromwell
    answers some 4xx with "error" (abort's 404, releaseHold's 403), and says so where it does."""
    body: dict[str, Any] = {"status": kind or ("fail" if status < 500 else "error"), "message": message}
    errors = list(errors)
    if errors:
        body["errors"] = errors
    return status, body


def _unknown(workflow_id: str) -> Answer:
    return _fail(404, f"Unrecognized workflow ID: {workflow_id}")


class CromwellApp:
    """Cromwell's REST API over a Backend; `LOCAL_VERSION` says plainly that it is a local tool."""

    def __init__(self, backend: Backend, spec: CromwellSpec, *, version: str = LOCAL_VERSION) -> None:
        self.backend = backend
        self.spec = spec
        self.version = version
        self.healthy = True
        self.faults = Faults()
        self.requests: list[LoggedRequest] = []
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        #: Set while the server stops, to cut injected delays short.
        self.stopping = threading.Event()
        self._handlers: dict[str, Callable[[Request, Operation, dict[str, str], Any], Answer]] = {
            "submit": self._submit,
            "submitBatch": self._submit_batch,
            "releaseHold": self._release_hold,
            "logs": self._logs,
            "timing": self._timing,
            "backends": self._backends,
            "describe": self._describe,
            "status": self._status,
            "outputs": self._outputs,
            "metadata": self._metadata,
            "failed-jobs": self._failed_jobs,
            "abort": self._abort,
            "labels": self._labels,
            "updateLabels": self._update_labels,
            "queryGet": self._query_get,
            "queryPost": self._query_post,
            "engineVersion": self._engine_version,
            "engineStatus": self._engine_status,
        }

    @property
    def served_operations(self) -> list[str]:
        return sorted(self._handlers)

    # -- WSGI --------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        served = self._swagger_support(request)
        if served is not None:
            return served(environ, start_response)
        operation: str | None = None
        parts: tuple[str, ...] = ()
        body: Any = None
        injected = False
        drop = False
        try:
            op, args = self.spec.match(request.method, request.path)
            operation = op.operation_id
        except NotFound:
            op, args = None, {}
            status, answer = _fail(404, "The requested resource could not be found.")
        except MethodNotAllowed:
            op, args = None, {}
            status, answer = _fail(405, f"HTTP method not allowed: {request.method}")
        if op is not None:
            if (delay := self.faults.take("delay", operation)) is not None:
                self.stopping.wait(delay.seconds)
            parts = self._part_names(request)
            if (fault := self.faults.take("fail", operation)) is not None:
                injected = True
                status, answer = _fail(fault.status, fault.message)
            else:
                status, answer, body = self._answer(request, op, args)
                drop = self.faults.take("drop", operation) is not None
        with self._lock:
            self.counts[operation or "unmatched"] += 1
            self.requests.append(
                LoggedRequest(
                    method=request.method,
                    path=request.path,
                    operation=operation,
                    query=tuple(request.args.items(multi=True)),
                    parts=parts,
                    body=body,
                    status=status,
                    response=answer,
                    injected=injected,
                )
            )
        if isinstance(answer, Html):
            response = Response(answer.text, status=status, mimetype="text/html")
        else:
            response = Response(json.dumps(answer), status=status, mimetype="application/json")
        response.headers["Connection"] = "close"
        response.headers.update(CORS)
        if drop:
            sock = environ.get("werkzeug.socket")
            if isinstance(sock, socket.socket):
                sock.shutdown(socket.SHUT_RDWR)
        return response(environ, start_response)

    def _swagger_support(self, request: Request) -> Response | None:
        """What a Swagger UI needs beside the API: the spec where Cromwell serves it
        (`/swagger/cromwell.yaml`), and answers to its browser's CORS preflight requests (the UI
        runs from another origin: this server serves no UI of its own)."""
        if request.method == "OPTIONS":
            response = Response(status=204)
        elif request.method == "GET" and request.path == SPEC_ROUTE:
            response = Response(self.spec.text, mimetype="application/yaml")
        else:
            return None
        response.headers.update(CORS)
        return response

    @staticmethod
    def _part_names(request: Request) -> tuple[str, ...]:
        if request.mimetype != "multipart/form-data":
            return ()
        return tuple(name for name, _ in request.form.items(multi=True)) + tuple(
            name for name, _ in request.files.items(multi=True)
        )

    def _answer(self, request: Request, op: Operation, args: dict[str, str]) -> tuple[int, Any, Any]:
        body: Any = None
        try:
            if args.get("version", "v1") != "v1":
                return *_fail(404, "The requested resource could not be found."), None
            if "id" in args:
                check_workflow_id(args["id"])
            parts = RequestParts(path_params=args, query=tuple(request.args.items(multi=True)))
            if request.mimetype == "multipart/form-data":
                parts.form = [(n, v) for n, v in request.form.items(multi=True)]
                parts.form += [(n, None) for n, _ in request.files.items(multi=True)]
            elif op.params_in("formData"):
                raise Rejection("Request must be multipart/form-data")
            if any(p.location == "body" for p in op.parameters) and request.get_data():
                try:
                    body = json.loads(request.get_data())
                except ValueError:
                    raise Rejection("The request content was malformed: not JSON") from None
                parts.body, parts.has_body = body, True
            problems = self.spec.check_request(op, parts)
            if problems:
                raise Rejection(problems[0] if len(problems) == 1 else "Invalid request", problems)
            handler = self._handlers.get(op.operation_id)
            if handler is None:
                return *_fail(
                    501, f"{op.operation_id} is not served by this local Cromwell test server"
                ), body
            status, answer = handler(request, op, args, body)
        except Rejection as refused:
            status, answer = refused.http_status, refused.body()
        except Exception as exc:  # a backend failure is Cromwell's 500
            status, answer = _fail(500, f"{type(exc).__name__}: {exc}")
        return status, answer, body

    # -- operations --------------------------------------------------------------------------

    @staticmethod
    def _raw_parts(request: Request) -> list[tuple[str, bytes]]:
        raw: list[tuple[str, bytes]] = [(n, v.encode("utf-8")) for n, v in request.form.items(multi=True)]
        raw += [(n, f.read()) for n, f in request.files.items(multi=True)]
        return raw

    def _submit(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        (submission,) = parse_submissions(
            self._raw_parts(request), self.spec.form_part_names(op), batch=False
        )
        try:
            workflow = self.backend.create(submission)
        except IdInUse as taken:
            return _fail(400, f"{IN_USE_MESSAGE}: {taken}")
        return 201, {"id": workflow.id, "status": workflow.status}

    def _submit_batch(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        submissions = parse_submissions(self._raw_parts(request), self.spec.form_part_names(op), batch=True)
        try:
            workflows = self.backend.create_batch(submissions)
        except IdInUse as taken:
            return _fail(400, f"{IN_USE_MESSAGE}: {taken}")
        # Cromwell answers a batch 201, as it answers one submission (see spec.ERRATA).
        return 201, [{"id": w.id, "status": w.status} for w in workflows]

    def _release_hold(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        try:
            workflow = self.backend.release_hold(args["id"])
        except NotOnHold as refused:
            return _fail(403, str(refused), kind="error")
        if workflow is None:
            return _unknown(args["id"])
        return 200, {"id": workflow.id, "status": "Submitted"}

    def _logs(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        return 200, workflow_logs(self._find(args["id"]).metadata())

    def _timing(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        md = expand_subworkflows(self._find(args["id"]).metadata(), self._metadata_of)
        return 200, Html(timing_page(md, datetime.now(UTC)))

    def _backends(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        return 200, {"supportedBackends": [BACKEND_NAME], "defaultBackend": BACKEND_NAME}

    def _describe(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        parts = dict(self._raw_parts(request))
        text = {name: data.decode("utf-8", errors="replace") for name, data in parts.items()}
        inputs = None
        if "workflowInputs" in text:
            try:
                inputs = yaml.safe_load(text["workflowInputs"])  # JSON is YAML
            except yaml.YAMLError:
                raise Rejection("Invalid workflowInputs: not a valid JSON or YAML object") from None
            if not isinstance(inputs, dict):
                raise Rejection("Invalid workflowInputs: must be a JSON object")
        return 200, describe(text.get("workflowSource"), text.get("workflowUrl"), inputs)

    def _find(self, workflow_id: str) -> Workflow:
        workflow = self.backend.find(workflow_id)
        if workflow is None:
            raise Rejection(f"Unrecognized workflow ID: {workflow_id}", http_status=404)
        return workflow

    def _status(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        workflow = self._find(args["id"])
        return 200, {"id": workflow.id, "status": workflow.status}

    def _outputs(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        workflow = self._find(args["id"])
        return 200, {"id": workflow.id, "outputs": dict(workflow.outputs)}

    def _metadata(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        include = request.args.getlist("includeKey")
        exclude = request.args.getlist("excludeKey")

        def fetch(workflow_id: str) -> dict[str, Any] | None:
            found = self.backend.find(workflow_id)
            return None if found is None else filter_metadata(found.metadata(), include, exclude)

        md = filter_metadata(self._find(args["id"]).metadata(), include, exclude)
        if request.args.get("expandSubWorkflows", "false").lower() == "true":
            md = expand_subworkflows(md, fetch)
        return 200, md

    def _metadata_of(self, workflow_id: str) -> dict[str, Any] | None:
        """A (sub-)workflow's unfiltered metadata, None when unknown."""
        found = self.backend.find(workflow_id)
        return None if found is None else found.metadata()

    def _failed_jobs(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        return 200, failed_jobs(self._find(args["id"]).metadata(), self._metadata_of)

    def _abort(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        status = self.backend.abort(args["id"])
        if status is None:
            # Cromwell answers this 404 with "error", not "fail".
            message = f"Couldn't abort {args['id']} because no workflow with that ID is in progress"
            return _fail(404, message, kind="error")
        return 200, {"id": args["id"].lower(), "status": status}

    def _labels(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        workflow = self._find(args["id"])
        return 200, {"id": workflow.id, "labels": workflow.all_labels()}

    def _update_labels(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        labels = check_labels(body)
        updated = self.backend.update_labels(args["id"], labels)
        if updated is None:
            return _unknown(args["id"])
        return 200, {"id": args["id"].lower(), "labels": updated}

    def _query_get(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        query = parse_query(request.args.items(multi=True))
        return 200, run_query(query, self.backend.workflows())

    def _query_post(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        pairs: list[tuple[str, str]] = []
        for item in body:
            for key, value in item.items():
                if isinstance(value, bool) or not isinstance(value, str | int):
                    raise Rejection(f"Query value for {key} must be a string: {value!r}")
                pairs.append((key, str(value)))
        return 200, run_query(parse_query(pairs), self.backend.workflows())

    def _engine_version(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        return 200, {"cromwell": self.version}

    def _engine_status(self, request: Request, op: Operation, args: dict[str, str], body: Any) -> Answer:
        if self.healthy:
            return 200, {"Engine Database": {"ok": True}}
        return 500, {"Engine Database": {"ok": False, "messages": ["unhealthy (set by a test)"]}}
