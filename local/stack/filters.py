"""Lambda event filtering (`FilterCriteria`), the subset of the pattern syntax an event source of
this project can use: nested objects, lists of exact values (strings, numbers, null), and the
`prefix`, `suffix`, `exists` and `anything-but` operators. Anything else is refused loudly rather
than silently matched differently from AWS.

A record passes when any filter matches (filters are OR-ed); a pattern matches when every key of
the pattern matches the record (AND), and a key matches when any of its listed values matches (OR).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from local.stack.template import TemplateError

_MISSING = object()
_OPERATORS = frozenset({"prefix", "suffix", "exists", "anything-but"})


def compile_filters(criteria: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The parsed patterns of a `FilterCriteria` property (none: every record passes)."""
    patterns = []
    for entry in (criteria or {}).get("Filters") or []:
        raw = entry.get("Pattern")
        pattern = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(pattern, dict):
            raise TemplateError(f"filter pattern {raw!r} is not a JSON object")
        _check(pattern, "")
        patterns.append(pattern)
    return patterns


def passes(record: Mapping[str, Any], patterns: Sequence[Mapping[str, Any]]) -> bool:
    return not patterns or any(_matches(record, pattern) for pattern in patterns)


def _check(pattern: Mapping[str, Any], where: str) -> None:
    for key, value in pattern.items():
        path = f"{where}.{key}" if where else key
        if isinstance(value, dict):
            _check(value, path)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    unknown = set(item) - _OPERATORS
                    if unknown or len(item) != 1:
                        raise TemplateError(f"filter {path}: operator {sorted(item)} is not emulated")
                elif isinstance(item, list):
                    raise TemplateError(f"filter {path}: nested lists are not valid")
        else:
            raise TemplateError(f"filter {path}: values must be listed in an array")


def _matches(value: Any, pattern: Mapping[str, Any]) -> bool:
    for key, expected in pattern.items():
        actual = value.get(key, _MISSING) if isinstance(value, Mapping) else _MISSING
        if isinstance(expected, dict):
            if actual is _MISSING or not _matches(actual, expected):
                return False
        elif not any(_leaf(actual, option) for option in expected):
            return False
    return True


def _leaf(actual: Any, option: Any) -> bool:
    if isinstance(option, dict):
        ((operator, argument),) = option.items()
        if operator == "exists":
            return (actual is not _MISSING) is bool(argument)
        if actual is _MISSING:
            return False
        values = actual if isinstance(actual, list) else [actual]
        if operator == "prefix":
            return any(isinstance(v, str) and v.startswith(argument) for v in values)
        if operator == "suffix":
            return any(isinstance(v, str) and v.endswith(argument) for v in values)
        excluded = argument if isinstance(argument, list) else [argument]
        return all(v not in excluded for v in values)
    if actual is _MISSING:
        return False
    if isinstance(actual, list):
        return any(_equal(v, option) for v in actual)
    return _equal(actual, option)


def _equal(actual: Any, option: Any) -> bool:
    if isinstance(option, bool) or isinstance(actual, bool):
        return actual is option
    if isinstance(option, int | float) and isinstance(actual, int | float | str):
        try:
            return float(actual) == float(option)
        except ValueError:
            return False
    return bool(actual == option)
