"""The environment tables of docs/monitor.md and docs/notify.md give the defaults a deployment gets.

For each variable of a table: when template.yaml sets it from a parameter, the table's default is
that parameter's default ("(required)" when it has none); when the template does not set it, the
table's default is the settings model's. Variables the template sets from something else (the
stack's own resources, its region) are only checked to be set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from local.stack.template import load_template
from monitor.settings import CallbackSettings, ReconcilerSettings
from notify.settings import NotifySettings

ROOT = Path(__file__).resolve().parents[2]
DOCS = {
    "docs/monitor.md": (
        ("MonitorFunction", "CallbackFunction", "ReconcilerFunction"),
        (ReconcilerSettings, CallbackSettings),
    ),
    "docs/notify.md": (("NotifyFunction",), (NotifySettings,)),
}
_CELL_WORDS = {"empty": "", "(required)": None}


def environment_rows(text: str) -> Iterator[tuple[list[str], list[str]]]:
    """(variables, defaults) of each row of the table headed `| variable | ... default ...|`."""
    lines = iter(text.splitlines())
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] != "variable" or "default" not in cells:
            continue
        column = cells.index("default")
        next(lines)  # |---|---|
        for row in lines:
            if not row.startswith("|"):
                return
            values = [c.strip() for c in row.strip().strip("|").split("|")]
            names = re.findall(r"`([A-Z][A-Z0-9_]+)`", values[0])
            defaults = [d.strip() for d in values[column].split(",")] if len(names) > 1 else [values[column]]
            yield names, defaults
        return


def normal(value: Any) -> str | None:
    """One spelling per value: numbers as floats, booleans lower-case, "empty" as ""."""
    if value is None or value is PydanticUndefined:
        return None
    text = str(value).strip().strip("`")
    if text in _CELL_WORDS:
        return _CELL_WORDS[text]
    if isinstance(value, bool) or text.lower() in ("true", "false"):
        return text.lower()
    try:
        return repr(float(text))
    except ValueError:
        return text


def template_environment(template: Mapping[str, Any], functions: tuple[str, ...]) -> dict[str, Any]:
    env: dict[str, Any] = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for name in functions:
        env.update(template["Resources"][name]["Properties"]["Environment"]["Variables"])
    return env


def settings_defaults(models: tuple[type[BaseModel], ...]) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for model in models:
        for info in model.model_fields.values():
            if info.alias:
                defaults[info.alias] = info.default
    return defaults


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_the_documented_defaults_are_the_deployed_ones(template: dict[str, Any], doc: str) -> None:
    functions, models = DOCS[doc]
    rows = list(environment_rows((ROOT / doc).read_text(encoding="utf-8")))
    assert rows, f"{doc} has an environment table"
    env = template_environment(template, functions)
    code = settings_defaults(models)
    parameters = template["Parameters"]
    checked = 0
    for names, defaults in rows:
        assert len(names) == len(defaults), f"{doc}: {names} and {defaults}"
        for name, documented in zip(names, defaults, strict=True):
            source = env.get(name)
            if isinstance(source, dict) and source.get("Ref") in parameters:
                expected = parameters[source["Ref"]].get("Default")
                where = f"template parameter {source['Ref']}"
            elif source is not None:
                continue  # the stack's own resource or region
            else:
                assert name in code, f"{doc}: {name} is neither set by the template nor a setting"
                expected, where = code[name], "settings model"
            assert normal(documented) == normal(expected), (
                f"{doc}: {name} is {documented!r}, {where} says {expected!r}"
            )
            checked += 1
    assert checked >= 5


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_every_variable_the_template_sets_is_in_the_table(template: dict[str, Any], doc: str) -> None:
    functions, _ = DOCS[doc]
    documented = {
        name for names, _ in environment_rows((ROOT / doc).read_text(encoding="utf-8")) for name in names
    }
    env = template_environment(template, functions)
    # Powertools' own settings, the same for every function (POWERTOOLS_TRACE_DISABLED follows the
    # EnableTracing parameter: docs/deploy.md)
    shared = {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
        "POWERTOOLS_TRACE_DISABLED",
    }
    assert set(env) - shared - documented == set()


def test_the_reader_sees_a_drift() -> None:
    table = (
        "| variable | default | meaning |\n|---|---|---|\n| `SPOT_VCPU_HOUR`, `SPOT_GB_HOUR` | 0.1, 2 | x |\n"
    )
    assert list(environment_rows(table)) == [(["SPOT_VCPU_HOUR", "SPOT_GB_HOUR"], ["0.1", "2"])]
    assert normal("0.0121") == normal(0.0121) != normal("0.01334053")
    assert normal("`true`") == normal("true") == normal(True)
    assert normal("empty") == normal("") == ""
