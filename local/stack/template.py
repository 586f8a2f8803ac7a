"""Reading `template.yaml`: a YAML loader that keeps CloudFormation's short-form tags, and a
resolver for the intrinsic functions the local stack needs (Ref, Fn::Sub, Fn::GetAtt, Fn::If,
Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition, Fn::Select, Fn::Split, Fn::Join).

The resolver knows the parameters (the template's defaults overlaid with the values chosen for the
local stack) and whatever the provisioner has created so far (`refs` and `attrs`). A reference to
something not created yet raises `Unresolved`, so the provisioner can try again later; anything
the resolver does not understand raises `TemplateError` with the path of the offending node.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from local.stack.paths import ROOT

TEMPLATE_PATH = ROOT / "template.yaml"


class TemplateError(Exception):
    """Something in the template the local stack cannot emulate; the message says what and where."""


class Unresolved(Exception):
    """A reference to a resource (or attribute) that does not exist yet."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

# -- loading ------------------------------------------------------------------------------------

_FUNCTIONS = (
    "Base64",
    "Cidr",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Select",
    "Split",
    "Sub",
    "Transform",
    "Equals",
    "Not",
    "And",
    "Or",
)


class TemplateLoader(yaml.SafeLoader):
    """SafeLoader plus CloudFormation's short forms (`!Ref x` -> {"Ref": "x"}, ...)."""


def _construct(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise TemplateError(f"unexpected YAML node {node!r}")  # pragma: no cover


def _add_function(name: str) -> None:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {f"Fn::{name}": _construct(node, loader)}

    TemplateLoader.add_constructor(f"!{name}", construct)


for _name in _FUNCTIONS:
    _add_function(_name)


def _ref(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    return {"Ref": _construct(node, loader)}


def _condition(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    return {"Condition": _construct(node, loader)}


def _get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = _construct(node, loader)
    if isinstance(value, str):
        name, _, attr = value.partition(".")
        value = [name, attr]
    return {"Fn::GetAtt": value}


TemplateLoader.add_constructor("!Ref", _ref)
TemplateLoader.add_constructor("!Condition", _condition)
TemplateLoader.add_constructor("!GetAtt", _get_att)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=TemplateLoader)  # noqa: S506 - SafeLoader subclass  # nosec B506
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources)")
    return document


# -- resolving ----------------------------------------------------------------------------------

_SUB_RE = re.compile(r"\$\{([^}]*)\}")


@dataclass
class Resolver:
    """Evaluates intrinsic functions against parameters, conditions and created resources."""

    template: Mapping[str, Any]
    parameters: dict[str, Any]
    region: str = "us-east-1"
    account: str = "123456789012"
    stack_name: str = "courier-local"
    refs: dict[str, Any] = field(default_factory=dict)
    attrs: dict[tuple[str, str], Any] = field(default_factory=dict)
    _conditions: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def for_template(
        cls, template: Mapping[str, Any], overrides: Mapping[str, Any], **kwargs: Any
    ) -> Resolver:
        declared: Mapping[str, Any] = template.get("Parameters") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(f"parameters not declared in the template: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in overrides:
                raw = overrides[name]
            elif "Default" in spec:
                raw = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no default; the local stack must choose a value")
            values[name] = _parameter_value(spec.get("Type", "String"), raw)
        return cls(template=template, parameters=values, **kwargs)

    # -- conditions ---------------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"condition {name} is not defined")
            self._conditions[name] = bool(self.resolve(conditions[name], f"Conditions.{name}"))
        return self._conditions[name]

    def active(self, logical_id: str) -> bool:
        resource = self.template["Resources"][logical_id]
        name = resource.get("Condition")
        return True if name is None else self.condition(name)

    # -- values -------------------------------------------------------------------------------

    def pseudo(self, name: str) -> Any:
        values: dict[str, Any] = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{self.stack_name}/local"
            ),
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name not in values:
            raise TemplateError(f"pseudo parameter {name} is not supported")
        return values[name]

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise Unresolved(name)

    def get_att(self, name: str, attr: str) -> Any:
        key = (name, attr)
        if key in self.attrs:
            return self.attrs[key]
        raise Unresolved(f"{name}.{attr}")

    def resolve(self, node: Any, where: str = "") -> Any:
        """The value of `node`, with every intrinsic function evaluated."""
        if isinstance(node, list):
            items = [self.resolve(item, f"{where}[{i}]") for i, item in enumerate(node)]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(str(arg))
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg, f"{where}.{key}")
        out: dict[str, Any] = {}
        for key, value in node.items():
            resolved = self.resolve(value, f"{where}.{key}" if where else str(key))
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out

    def _function(self, name: str, arg: Any, where: str) -> Any:
        if name == "If":
            condition, yes, no = _args(arg, 3, where)
            return self.resolve(yes if self.condition(str(condition)) else no, where)
        if name == "Equals":
            left, right = (self.resolve(a, where) for a in _args(arg, 2, where))
            return str(left) == str(right) if not isinstance(left, list) else left == right
        if name == "Not":
            (value,) = _args(arg, 1, where)
            return not self.resolve(value, where)
        if name == "And":
            return all(self.resolve(a, where) for a in arg)
        if name == "Or":
            return any(self.resolve(a, where) for a in arg)
        if name == "GetAtt":
            target, attr = arg.split(".", 1) if isinstance(arg, str) else _args(arg, 2, where)
            return self.get_att(str(target), str(attr))
        if name == "Join":
            separator, values = _args(arg, 2, where)
            items = self.resolve(values, where)
            if not isinstance(items, list):
                raise TemplateError(f"{where}: Fn::Join needs a list")
            return str(separator).join(str(i) for i in items)
        if name == "Split":
            separator, value = _args(arg, 2, where)
            return str(self.resolve(value, where)).split(str(separator))
        if name == "Select":
            index, values = _args(arg, 2, where)
            items = self.resolve(values, where)
            return items[int(self.resolve(index, where))]
        if name == "Sub":
            return self._sub(arg, where)
        raise TemplateError(f"{where}: Fn::{name} is not supported by the local stack")

    def _sub(self, arg: Any, where: str) -> str:
        if isinstance(arg, list):
            text, variables = _args(arg, 2, where)
            local = {k: self.resolve(v, f"{where}.{k}") for k, v in dict(variables).items()}
        else:
            text, local = arg, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return str(local[name])
            if "." in name and not name.startswith("AWS::"):
                target, attr = name.split(".", 1)
                return str(self.get_att(target, attr))
            return str(self.ref(name))

        return _SUB_RE.sub(replace, str(text))


def _args(arg: Any, count: int, where: str) -> list[Any]:
    if not isinstance(arg, list) or len(arg) != count:
        raise TemplateError(f"{where}: expected {count} arguments, got {arg!r}")
    return arg


def _parameter_value(kind: str, raw: Any) -> Any:
    if kind == "CommaDelimitedList" or kind.startswith("List<"):
        if isinstance(raw, list):
            return [str(v) for v in raw]
        return str(raw).split(",") if str(raw) != "" else [""]
    return str(raw)
