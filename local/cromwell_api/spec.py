"""Cromwell's Swagger 2.0 spec as a request checker and a response validator.

The vendored `cromwell-openapi.yaml` is Cromwell's published spec, unchanged. Where Cromwell's
code answers differently from what the spec says, the code wins; each such place is listed in
`ERRATA` and patched into an in-memory copy of the spec.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import yaml  # type: ignore[import-untyped]
from werkzeug.routing import Map, Rule

SPEC_PATH = Path(__file__).with_name("cromwell-openapi.yaml")

#: Where Cromwell (release 92) and its published spec disagree. The server follows Cromwell.
ERRATA: tuple[str, ...] = (
    "LabelsResponse.labels is an object of strings, not a string",
    "outputs answers 200 {id, outputs}: there is no status",
    "workflowTypeVersion also accepts 1.1",
    "GET /query also takes page, pageSize and newestFirst, keys are case-insensitive, "
    "status may be 'On Hold', and bad parameters answer 400",
    "POST /query reads every value as a string (page and pageSize included); status may be 'On Hold'",
    "POST /batch answers 201 with the list, not 200: CromwellApiService completes a batch with Created, "
    "as it does one submission",
    "logs answers 200 {id, calls}, the log paths of each call attempt: there is no status (the spec "
    "reuses WorkflowIdAndStatus), and no calls before a call has logs",
    "timing answers 200 with an HTML page (text/html), not JSON: Cromwell serves its timing diagram",
    "the label filters of /query take any key:value: Cromwell checks only the lengths of label keys "
    "and values, the pattern is its old label rule",
    "describe: ValueType names its type in typeName (the spec requires a valueType no answer has), "
    "ToolInputParameter.default is null without a default, and a bad request answers 400",
)

_STATES = ["On Hold", "Submitted", "Running", "Aborting", "Failed", "Succeeded", "Aborted"]


def _apply_errata(spec: dict[str, Any]) -> None:
    defs = spec["definitions"]
    defs["LabelsResponse"]["properties"]["labels"] = {
        "type": "object",
        "additionalProperties": {"type": "string"},
    }
    paths = spec["paths"]
    paths["/api/workflows/{version}/{id}/outputs"]["get"]["responses"]["200"] = {
        "description": "Successful Request",
        "schema": {
            "required": ["id", "outputs"],
            "properties": {"id": {"type": "string"}, "outputs": {"type": "object"}},
        },
    }
    spec["parameters"]["workflowTypeVersionParam"]["enum"] = ["draft-2", "1.0", "1.1"]
    query_get = paths["/api/workflows/{version}/query"]["get"]
    query_get["parameters"] += [
        {"name": "page", "in": "query", "required": False, "type": "integer"},
        {"name": "pageSize", "in": "query", "required": False, "type": "integer"},
        {"name": "newestFirst", "in": "query", "required": False, "type": "boolean"},
    ]
    for param in query_get["parameters"]:
        if param.get("name") == "status":
            param["enum"] = list(_STATES)
    query_get["responses"]["400"] = {"$ref": "#/responses/BadRequest"}
    qp = defs["WorkflowQueryParameter"]["properties"]
    qp["status"]["enum"] = list(_STATES)
    for name in ("page", "pageSize"):
        qp[name] = {"type": ["integer", "string"], "pattern": "^[0-9]+$"}
    batch = paths["/api/workflows/{version}/batch"]["post"]["responses"]
    batch["201"] = batch.pop("200")
    paths["/api/workflows/{version}/{id}/logs"]["get"]["responses"]["200"] = {
        "description": "Successful Request",
        "schema": {
            "required": ["id"],
            "properties": {"id": {"type": "string"}, "calls": {"type": "object"}},
        },
    }
    paths["/api/workflows/{version}/{id}/timing"]["get"]["responses"]["200"] = {
        "description": "An HTML page of the workflow's call timings"
    }
    labelled = ("label", "labelor", "excludeLabelAnd", "excludeLabelOr")
    for param in query_get["parameters"]:
        if param.get("name") in labelled:
            param.pop("pattern", None)
    for name in labelled:
        qp.get(name, {}).pop("pattern", None)
    defs["ValueType"]["required"] = ["typeName"]
    defs["ToolInputParameter"]["properties"]["default"] = {"type": ["string", "null"]}
    paths["/api/womtool/{version}/describe"]["post"]["responses"]["400"] = {"$ref": "#/responses/BadRequest"}


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    location: str
    required: bool
    definition: Mapping[str, Any]

    @property
    def is_array(self) -> bool:
        return self.definition.get("type") == "array"


@dataclass(frozen=True, slots=True)
class Operation:
    operation_id: str
    method: str
    path: str
    parameters: tuple[Parameter, ...]
    responses: Mapping[str, Mapping[str, Any]]
    case_insensitive_query: bool = False

    def params_in(self, location: str) -> dict[str, Parameter]:
        return {p.name: p for p in self.parameters if p.location == location}


@dataclass
class RequestParts:
    """What the server read from one request, as the spec check sees it."""

    path_params: Mapping[str, str]
    query: Sequence[tuple[str, str]] = ()
    form: Sequence[tuple[str, str | None]] = ()
    body: Any = None
    has_body: bool = False
    problems: list[str] = field(default_factory=list)


def _check_value(param: Parameter, value: str) -> str | None:
    """A problem with one string value of a path, query or formData parameter, or None."""
    spec = param.definition
    kind = spec.get("type")
    items = spec.get("items") or {}
    if kind == "array":
        kind = items.get("type", "string")
    enum = spec.get("enum") or items.get("enum")
    pattern = spec.get("pattern") or items.get("pattern")
    fmt = spec.get("format") or items.get("format")
    if kind == "boolean" and value.lower() not in ("true", "false"):
        return f"{param.name} must be true or false, got {value!r}"
    if kind == "integer" and not re.fullmatch(r"-?[0-9]+", value):
        return f"{param.name} must be an integer, got {value!r}"
    if enum is not None and value not in enum:
        return f"{param.name} must be one of {', '.join(map(str, enum))}; got {value!r}"
    if pattern is not None and kind == "string" and not re.search(pattern, value):
        return f"{param.name} {value!r} does not match {pattern}"
    if fmt == "date-time":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return f"{param.name} must be an ISO 8601 date-time, got {value!r}"
    return None


class CromwellSpec:
    """The operations of the spec, a router over their path templates, and validators."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        #: The published spec as written (served at `/swagger/cromwell.yaml`).
        self.text = path.read_text(encoding="utf-8")
        self.raw: dict[str, Any] = yaml.safe_load(self.text)
        self.effective: dict[str, Any] = copy.deepcopy(self.raw)
        _apply_errata(self.effective)
        self.operations: dict[str, Operation] = {}
        rules: list[Rule] = []
        for template, methods in self.effective["paths"].items():
            route = re.sub(r"\{(\w+)\}", r"<\1>", template)
            for method, op in methods.items():
                operation = self._operation(template, method.upper(), op)
                self.operations[operation.operation_id] = operation
                rules.append(Rule(route, endpoint=operation.operation_id, methods=[operation.method]))
        self._map = Map(rules, strict_slashes=False, merge_slashes=False)

    # -- lookup ------------------------------------------------------------------------------

    def _deref(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in node and str(node["$ref"]).startswith("#/") and "/definitions/" not in node["$ref"]:
            target: Any = self.effective
            for part in str(node["$ref"])[2:].split("/"):
                target = target[part]
            node = target
        return node

    def _operation(self, template: str, method: str, op: Mapping[str, Any]) -> Operation:
        params = []
        for raw in op.get("parameters") or []:
            spec = self._deref(raw)
            params.append(Parameter(spec["name"], spec["in"], bool(spec.get("required")), spec))
        responses = {str(code): self._deref(resp) for code, resp in (op.get("responses") or {}).items()}
        return Operation(
            operation_id=op["operationId"],
            method=method,
            path=template,
            parameters=tuple(params),
            responses=responses,
            case_insensitive_query=op["operationId"] == "queryGet",
        )

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]]:
        """The operation for a request. Raises werkzeug's NotFound or MethodNotAllowed."""
        endpoint, args = self._map.bind("localhost").match(path, method=method)
        return self.operations[str(endpoint)], {k: str(v) for k, v in args.items()}

    def route_exists(self, method: str, template: str) -> bool:
        return method.lower() in self.raw["paths"].get(template, {})

    # -- requests ----------------------------------------------------------------------------

    def check_request(self, op: Operation, request: RequestParts) -> list[str]:
        """Problems with a request, judged by the operation's declared parameters."""
        problems: list[str] = []
        for name, path_param in op.params_in("path").items():
            value = request.path_params.get(name)
            if value is None:
                problems.append(f"missing path parameter {name}")
            elif (problem := _check_value(path_param, value)) is not None:
                problems.append(problem)

        declared = op.params_in("query")
        lookup = {(k.lower() if op.case_insensitive_query else k): p for k, p in declared.items()}
        seen: dict[str, int] = {}
        for key, value in request.query:
            param = lookup.get(key.lower() if op.case_insensitive_query else key)
            if param is None:
                problems.append(f"Unrecognized query keys: {key}")
                continue
            seen[param.name] = seen.get(param.name, 0) + 1
            if seen[param.name] > 1 and not param.is_array:
                problems.append(f"{param.name} can be specified at most once")
            elif (problem := _check_value(param, value)) is not None:
                problems.append(problem)
        problems += [
            f"missing query parameter {n}" for n, p in declared.items() if p.required and n not in seen
        ]

        form = op.params_in("formData")
        given = {name for name, _ in request.form}
        for name, form_value in request.form:
            part = form.get(name)
            if part is None:
                continue  # part names are judged by the operation's own rules (see rules.py)
            if form_value is not None and (problem := _check_value(part, form_value)) is not None:
                problems.append(problem)
        problems += [f"missing body part {n}" for n, p in form.items() if p.required and n not in given]

        for body_param in op.parameters:
            if body_param.location != "body":
                continue
            if not request.has_body:
                if body_param.required:
                    problems.append(f"a JSON body ({body_param.name}) is required")
                continue
            problems += self.schema_problems(body_param.definition.get("schema") or {}, request.body)
        return problems

    def form_part_names(self, op: Operation) -> set[str]:
        return set(op.params_in("formData"))

    # -- schemas -----------------------------------------------------------------------------

    @cached_property
    def _definitions(self) -> dict[str, Any]:
        return dict(self.effective["definitions"])

    def schema_problems(self, schema: Mapping[str, Any], instance: Any) -> list[str]:
        root = {"definitions": self._definitions, "allOf": [dict(schema)]}
        validator = jsonschema.Draft4Validator(root)
        return [
            f"{'/'.join(map(str, err.absolute_path)) or '<root>'}: {err.message}"
            for err in validator.iter_errors(instance)
        ]

    def response_problems(self, operation_id: str, status: int, body: Any) -> list[str]:
        """Problems with an answer: its status must be declared, its JSON body must match."""
        op = self.operations[operation_id]
        declared = op.responses.get(str(status))
        if declared is None:
            return [f"{operation_id}: status {status} is not declared (declared: {sorted(op.responses)})"]
        schema = declared.get("schema")
        if schema is None:
            return []
        return [f"{operation_id} {status}: {p}" for p in self.schema_problems(schema, body)]
