"""Womtool's `describe` (`POST /api/womtool/v1/describe`), answered with miniwdl.

`cromshell submit` asks it to validate the WDL and inputs before submitting. The answer has
Womtool's shape (`WorkflowDescription`): `valid`, `errors`, `validWorkflow`, the workflow's
`name`, its `inputs` and `outputs` with their types, the `images` its tasks name, and the
descriptor's version. A WDL that does not load, or inputs that do not fit, answer 200 with
`valid: false` and the reasons, as Womtool does.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import requests

from local.cromwell_api.rules import Rejection

_PLAIN = {"String", "File", "Directory", "Float", "Int", "Boolean"}


def value_type(ty: Any) -> dict[str, Any]:
    """Womtool's `ValueType` of a miniwdl type."""
    import WDL  # noqa: PLC0415 - miniwdl is loaded only when a description is asked for

    if ty.optional:
        return {"typeName": "Optional", "optionalType": value_type(ty.copy(optional=False))}
    if isinstance(ty, WDL.Type.Array):
        return {"typeName": "Array", "arrayType": value_type(ty.item_type)}
    if isinstance(ty, WDL.Type.Map):
        key, value = ty.item_type
        return {"typeName": "Map", "mapType": {"keyType": value_type(key), "valueType": value_type(value)}}
    if isinstance(ty, WDL.Type.Pair):
        pair = {"leftType": value_type(ty.left_type), "rightType": value_type(ty.right_type)}
        return {"typeName": "Pair", "pairType": pair}
    if isinstance(ty, WDL.Type.StructInstance) and ty.members:
        fields = [{"fieldName": name, "fieldType": value_type(member)} for name, member in ty.members.items()]
        return {"typeName": "Object", "objectFieldTypes": fields}
    name = str(ty).rstrip("?")
    return {"typeName": name if name in _PLAIN else "Object"}


def _images(doc: Any) -> list[str]:
    found: list[str] = []
    for task in doc.tasks:
        expr = task.runtime.get("docker") or task.runtime.get("container")
        literal = getattr(expr, "literal", None)
        if literal is not None and str(literal.value) not in found:
            found.append(str(literal.value))
    return found


def _invalid(errors: list[str], *, valid_workflow: bool = False, version: str = "1.0") -> dict[str, Any]:
    return {
        "valid": False,
        "errors": errors,
        "validWorkflow": valid_workflow,
        "name": "",
        "inputs": [],
        "outputs": [],
        "images": [],
        "submittedDescriptorType": {"descriptorType": "WDL", "descriptorTypeVersion": version},
        "importedDescriptorTypes": [],
        "meta": {},
        "parameterMeta": {},
        "isRunnableWorkflow": False,
    }


def describe(source: str | None, url: str | None, inputs: dict[str, Any] | None) -> dict[str, Any]:
    """Womtool's description of a workflow and, when given, of its inputs."""
    import WDL  # noqa: PLC0415

    if (source is None) == (url is None):
        raise Rejection("Exactly one of workflowSource or workflowUrl must be supplied")
    if url is not None:
        try:
            response = requests.get(url, timeout=30)
            response.raise_for_status()
        except requests.RequestException as exc:
            return _invalid([f"Failed to download {url}: {exc}"])
        source = response.text
    with tempfile.TemporaryDirectory(prefix="describe-") as folder:
        main = Path(folder) / "main.wdl"
        main.write_text(source or "", encoding="utf-8")
        try:
            doc = WDL.load(str(main), path=[folder])
        except (WDL.Error.SyntaxError, WDL.Error.ValidationError, WDL.Error.MultipleValidationErrors) as exc:
            problems = getattr(exc, "exceptions", None) or [exc]
            return _invalid([f"{type(p).__name__}: {p}" for p in problems])
        except (OSError, WDL.Error.ImportError) as exc:
            return _invalid([f"{type(exc).__name__}: {exc}"])
    version = doc.wdl_version or "draft-2"
    workflow = doc.workflow
    if workflow is None:
        return {**_invalid(["The WDL has no workflow: only a workflow can be run"], version=version)}
    errors: list[str] = []
    if inputs is not None:
        try:
            WDL.values_from_json(
                inputs, workflow.available_inputs, workflow.required_inputs, namespace=workflow.name
            )
        except WDL.Error.InputError as exc:
            errors.append(str(exc))
    described_inputs = [
        {
            "name": f"{workflow.name}.{binding.name}",
            "valueType": value_type(binding.value.type),
            "optional": binding.value.type.optional or binding.value.expr is not None,
            "default": str(binding.value.expr) if binding.value.expr is not None else None,
            "typeDisplayName": str(binding.value.type),
        }
        for binding in workflow.available_inputs
    ]
    described_outputs = [
        {
            "name": f"{workflow.name}.{binding.name}",
            "valueType": value_type(binding.value),
            "typeDisplayName": str(binding.value),
        }
        for binding in workflow.effective_outputs
    ]
    return {
        "valid": not errors,
        "errors": errors,
        "validWorkflow": True,
        "name": workflow.name,
        "inputs": described_inputs,
        "outputs": described_outputs,
        "images": _images(doc),
        "submittedDescriptorType": {"descriptorType": "WDL", "descriptorTypeVersion": version},
        "importedDescriptorTypes": [
            {"descriptorType": "WDL", "descriptorTypeVersion": imp.doc.wdl_version or "draft-2"}
            for imp in doc.imports
            if imp.doc is not None
        ],
        "meta": dict(workflow.meta),
        "parameterMeta": dict(workflow.parameter_meta),
        "isRunnableWorkflow": True,
    }
