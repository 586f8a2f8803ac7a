"""Reading the JSON files of a run folder (inputs, options.json, labels.json) into plain values,
with one precise sentence for each way such a file can be unusable."""

from __future__ import annotations

import json
from typing import Any

from submit.folder import Findings, shown

_BOM = "\ufeff"
_MAX_DEPTH = 64


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


class _ConstantError(ValueError):
    def __init__(self, constant: str) -> None:
        self.constant = constant
        super().__init__(constant)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def _no_constants(constant: str) -> Any:
    raise _ConstantError(constant)


def json_kind(value: Any) -> str:
    """A bioinformatician's name for a JSON value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def decode_text(name: str, body: bytes, findings: Findings) -> str | None:
    """UTF-8 text of a file (a leading byte-order mark dropped, with a warning), or None."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        findings.refuse(
            f"{shown(name)} is not UTF-8 text (byte 0x{body[exc.start]:02x} at offset {exc.start:,}); "
            "save it as UTF-8"
        )
        return None
    if text.startswith(_BOM):
        findings.warn(f"{shown(name)} starts with a byte-order mark; Courier removed it")
        text = text[1:]
    return text


def _depth(value: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return deepest


def read_json_object(  # noqa: PLR0911
    name: str, body: bytes, findings: Findings
) -> tuple[dict[str, Any], str] | None:
    """Parse `body` as one JSON object; return it with its text, or record why not and return None."""
    text = decode_text(name, body, findings)
    if text is None:
        return None
    label = shown(name)
    if not text.strip():
        findings.refuse(f'{label} is empty; it must hold a JSON object such as {{"key": "value"}}')
        return None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        findings.refuse(f"{label} is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}")
        return None
    except _DuplicateKeyError as exc:
        findings.refuse(f"{label} names the key '{shown(exc.key)}' more than once; keep one of them")
        return None
    except _ConstantError as exc:
        findings.refuse(f"{label} is not valid JSON: {exc.constant} is not a JSON number")
        return None
    except RecursionError:
        findings.refuse(f"{label} is nested too deeply to be read")
        return None
    except ValueError as exc:
        findings.refuse(f"{label} is not valid JSON: {shown(str(exc))}")
        return None
    if not isinstance(value, dict):
        findings.refuse(f"{label} must hold a JSON object ({{...}}); it holds {json_kind(value)}")
        return None
    if _depth(value) > _MAX_DEPTH:
        findings.refuse(f"{label} is nested more than {_MAX_DEPTH} levels deep")
        return None
    return value, text
