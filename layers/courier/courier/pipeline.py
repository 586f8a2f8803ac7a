"""Pipelines of runs: what `courier_next` in options.json asks for, a run's place in a chain, and
the inputs of the next run built from its parent's (or a batch's) outputs and inputs.

Pure: no boto3, no S3 or DynamoDB. Submit validates a `NextSpec` when it reads options.json and
keeps it (with the inputs it references, and the run's `Lineage`) on the run item; notify builds
the next inputs here when the run (`when: run`) or its batch (`when: batch`) ends, and writes them
into the next folder as `from-<parent>.inputs.json`, which starts the next run like any dropped
inputs file (docs/pipelines.md).

A value of the `inputs` mapping is one of:

* a reference, always a string: `outputs.<workflow>.<output>` (the parent's output, as Cromwell
  names it) or `inputs.<workflow>.<input>` / `inputs.<workflow>.<call>.<input>` (the value the
  parent was given, as its inputs file names it);
* a constant: `{"value": <any JSON>}`, or any JSON value that is neither a string nor an object
  (a number, true/false, null, a list). A string constant is written `{"value": "text"}`.

In `batch` mode each reference gathers one value per succeeded sample into an array, in the
batch's sample order (the rows' order in the sample sheet); constants are not gathered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Self

from courier.models import RunStatus

WHEN_RUN: Final = "run"
WHEN_BATCH: Final = "batch"
#: The prefix of the inputs file a parent writes into its next folder: `from-<parent>.inputs.json`.
NEXT_INPUTS_PREFIX: Final = "from-"
NEXT_INPUTS_SUFFIX: Final = ".inputs.json"
#: The deepest chain when the deployment says nothing (template parameter `MaxChainDepth`).
DEFAULT_MAX_CHAIN_DEPTH: Final = 5
#: The most a run item keeps of the parent inputs its next step references (DynamoDB items are
#: at most 400 KB, and the run item holds its outputs too).
MAX_CAPTURED_INPUT_BYTES: Final = 64 * 1024

_SOURCES: Final = ("outputs", "inputs")
_NAME_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


# -- the spec ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    """`outputs.<key>` or `inputs.<key>`: `key` as Cromwell names the output or the input."""

    source: Literal["outputs", "inputs"]
    key: str

    @property
    def workflow(self) -> str:
        return self.key.split(".", 1)[0]

    def __str__(self) -> str:
        return f"{self.source}.{self.key}"


@dataclass(frozen=True, slots=True)
class Constant:
    value: Any


type Source = Reference | Constant


def parse_reference(text: str) -> Reference | str:
    """The reference `text` names, or a sentence saying why it is not one."""
    source, _, key = text.partition(".")
    parts = key.split(".")
    if source not in _SOURCES:
        return (
            f"'{text[:120]}' is not a reference: write outputs.<workflow>.<output> or "
            'inputs.<workflow>.<input>, and a text constant as {"value": "..."}'
        )
    if len(parts) < 2 or (source == "outputs" and len(parts) != 2) or len(parts) > 3:
        shape = "outputs.<workflow>.<output>" if source == "outputs" else "inputs.<workflow>[.<call>].<input>"
        return f"'{text[:120]}' is not of the form {shape}"
    if not all(_NAME_RE.match(part) for part in parts):
        return f"'{text[:120]}' holds a name that is not a WDL identifier"
    return Reference("outputs" if source == "outputs" else "inputs", key)


def parse_source(value: Any) -> Source | str:
    """A value of the `inputs` mapping: a reference, a constant, or why it is neither."""
    if isinstance(value, str):
        return parse_reference(value)
    if isinstance(value, Mapping):
        if set(value) == {"value"}:
            return Constant(value["value"])
        return 'an object must be a constant written {"value": ...}'
    return Constant(value)


def folder_problem(folder: str) -> str | None:
    """Why `folder` (a prefix in the runs bucket) cannot be a next folder, or None."""
    if not folder.strip("/"):
        return "is empty"
    if folder.startswith("/") or folder.startswith("s3://"):
        return "must be a folder of the runs bucket, e.g. \"runs/joint/\" (no leading '/', no s3://)"
    if any(not ch.isprintable() for ch in folder) or "\\" in folder:
        return "contains a control character or a backslash"
    parts = folder.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "contains an empty, '.' or '..' segment"
    if len(folder) > 512:
        return "is longer than 512 characters"
    return None


def as_folder(folder: str) -> str:
    """The folder with one trailing slash, as run folders are kept in the ledger."""
    return folder.rstrip("/") + "/"


_SPEC_KEYS: Final = ("folder", "when", "require_all", "inputs")


@dataclass(frozen=True, slots=True)
class NextSpec:
    """`courier_next` in options.json: the next run folder, when the next run starts, and how its
    inputs are built. Read with `read` (every problem named), kept on the run item as `to_map`.
    A plain dataclass, not a pydantic model: the `courier` command reads it without pydantic."""

    folder: str
    inputs: Mapping[str, Any]
    when: Literal["run", "batch"] = WHEN_RUN
    require_all: bool = False

    @classmethod
    def read(cls, raw: Any) -> NextSpec | list[str]:
        """The spec, or one sentence per problem (for the receipt)."""
        if not isinstance(raw, Mapping):
            return ["must be an object with folder, when, inputs (and require_all)"]
        known = ", ".join(_SPEC_KEYS)
        problems = [f"unknown key '{str(key)[:60]}' (known: {known})" for key in raw if key not in _SPEC_KEYS]
        folder, inputs = raw.get("folder"), raw.get("inputs")
        when, require_all = raw.get("when", WHEN_RUN), raw.get("require_all", False)
        problems += _folder_problems(folder) + _inputs_problems(inputs)
        if when not in (WHEN_RUN, WHEN_BATCH):
            problems.append(
                '\'when\' must be "run" (a next run per succeeded run) or "batch" (one when the batch ends)'
            )
        if not isinstance(require_all, bool):
            problems.append("'require_all' must be true or false")
        if problems or not isinstance(folder, str) or not isinstance(inputs, Mapping):
            return problems
        return cls(
            folder=as_folder(folder),
            inputs=dict(inputs),
            when=WHEN_BATCH if when == WHEN_BATCH else WHEN_RUN,
            require_all=require_all,
        )

    @classmethod
    def stored(cls, raw: Any) -> NextSpec | None:
        """The spec as the ledger keeps it; None when there is none (or it cannot be read)."""
        spec = cls.read(raw) if raw else None
        return spec if isinstance(spec, NextSpec) else None

    @property
    def sources(self) -> dict[str, Source]:
        parsed = {name: parse_source(value) for name, value in self.inputs.items()}
        return {name: source for name, source in parsed.items() if not isinstance(source, str)}

    @property
    def references(self) -> list[Reference]:
        return [source for source in self.sources.values() if isinstance(source, Reference)]

    def to_map(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "when": self.when,
            "require_all": self.require_all,
            "inputs": dict(self.inputs),
        }


def _folder_problems(folder: Any) -> list[str]:
    if folder is None:
        return ["'folder' is missing"]
    if not isinstance(folder, str):
        return ["'folder' must be a string, the next run folder in the runs bucket"]
    problem = folder_problem(folder)
    return [f"'folder': '{folder[:120]}' {problem}"] if problem is not None else []


def _inputs_problems(inputs: Any) -> list[str]:
    if inputs is None:
        return ["'inputs' is missing"]
    if not isinstance(inputs, Mapping) or not inputs:
        return ["'inputs' must be an object naming at least one input of the next run"]
    problems = []
    for name, source in inputs.items():
        parsed = parse_source(source)
        if isinstance(parsed, str):
            problems.append(f"'inputs.{str(name)[:120]}': {parsed}")
    return problems


# -- lineage ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lineage:
    """A run's place in a pipeline: the run folders of its chain, root first, its own last; the
    runs its inputs were built from and, in `batch` mode, their batch."""

    chain: tuple[str, ...]
    parents: tuple[str, ...] = ()
    parent_batch: str | None = None

    @property
    def depth(self) -> int:
        return len(self.chain)

    @classmethod
    def root(cls, folder: str) -> Self:
        return cls(chain=(as_folder(folder),))

    @classmethod
    def from_map(cls, raw: Any) -> Self | None:
        if not isinstance(raw, Mapping):
            return None
        chain = tuple(str(f) for f in raw.get("chain") or () if isinstance(f, str))
        if not chain:
            return None
        parents = tuple(str(p) for p in raw.get("parents") or () if isinstance(p, str))
        batch = raw.get("parent_batch")
        return cls(chain=chain, parents=parents, parent_batch=batch if isinstance(batch, str) else None)

    def to_map(self) -> dict[str, Any]:
        values: dict[str, Any] = {"chain": list(self.chain), "parents": list(self.parents)}
        if self.parent_batch:
            values["parent_batch"] = self.parent_batch
        return values

    def child(self, folder: str, *, parents: Sequence[str], parent_batch: str | None) -> Lineage:
        return Lineage(
            chain=(*self.chain, as_folder(folder)), parents=tuple(parents), parent_batch=parent_batch
        )


def loop_problem(chain: Sequence[str], next_folder: str) -> str | None:
    """Why a run of the chain `chain` may not start a run in `next_folder`: it is in the chain."""
    target = as_folder(next_folder)
    if target not in chain:
        return None
    path = " -> ".join([*chain, target])
    if target == chain[-1]:
        return f"the next folder {target} is this run's own folder: a pipeline may not loop ({path})"
    return f"the next folder {target} is already in this pipeline: a pipeline may not loop ({path})"


def chain_problem(chain: Sequence[str], next_folder: str, max_depth: int) -> str | None:
    """Why a run of the chain `chain` may not start a run in `next_folder`: a loop, or too deep."""
    loop = loop_problem(chain, next_folder)
    if loop is not None:
        return loop
    if len(chain) + 1 > max_depth:
        return (
            f"the next run would be step {len(chain) + 1} of this pipeline "
            f"({' -> '.join([*chain, as_folder(next_folder)])}); "
            f"a pipeline is at most {max_depth} steps deep (MaxChainDepth)"
        )
    return None


def next_inputs_key(folder: str, parent: str) -> str:
    """`<next folder>from-<parent>.inputs.json`: the same key for every delivery of one end."""
    return f"{as_folder(folder)}{NEXT_INPUTS_PREFIX}{parent}{NEXT_INPUTS_SUFFIX}"


def is_next_inputs(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return name.startswith(NEXT_INPUTS_PREFIX) and name.endswith(NEXT_INPUTS_SUFFIX)


def captured_inputs(spec: NextSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The values of `inputs` (the run's inputs document) that the spec references: what the run
    item keeps, so the next inputs can be built without reading the inputs file again."""
    return {
        ref.key: inputs[ref.key] for ref in spec.references if ref.source == "inputs" and ref.key in inputs
    }


# -- building the next inputs -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParentRun:
    """What the next inputs are built from, for one parent run (one sample of a batch)."""

    workflow_id: str
    status: RunStatus | None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)
    #: Outputs the ledger did not keep (too many or too large): a missing one may be among them.
    outputs_left_out: int = 0
    sample: str | None = None

    @property
    def label(self) -> str:
        return self.sample or self.workflow_id


@dataclass(frozen=True, slots=True)
class NextInputs:
    """The inputs document of the next run, and the runs it was built from."""

    document: dict[str, Any]
    parents: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps(self.document, ensure_ascii=False, indent=2) + "\n"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the next run is not started, one sentence each."""

    reasons: tuple[str, ...]


def _value(ref: Reference, parent: ParentRun) -> tuple[bool, Any, str]:
    """(found, value, why not) for one reference in one parent."""
    if ref.source == "outputs":
        if ref.key in parent.outputs:
            return True, parent.outputs[ref.key], ""
        if parent.outputs_left_out:
            return (
                False,
                None,
                (
                    f"{parent.label}: output {ref.key} is not among the outputs the ledger kept "
                    f"({parent.outputs_left_out} left out as too many or too large)"
                ),
            )
        known = ", ".join(sorted(parent.outputs)[:10]) or "none"
        return False, None, f"{parent.label}: the run has no output {ref.key} (its outputs: {known})"
    if ref.key in parent.inputs:
        return True, parent.inputs[ref.key], ""
    return False, None, f"{parent.label}: input {ref.key} was not given to the run (no value to pass on)"


def _fill(spec: NextSpec, parents: Sequence[ParentRun], *, gather: bool) -> NextInputs | Refusal:
    """The next inputs: constants as they are, each reference the parent's value (`gather`: an
    array of the parents' values, in their order); refused with every value not found."""
    document: dict[str, Any] = {}
    reasons: list[str] = []
    for name, source in spec.sources.items():
        if isinstance(source, Constant):
            document[name] = source.value
            continue
        values: list[Any] = []
        for parent in parents:
            found, value, why = _value(source, parent)
            if found:
                values.append(value)
            else:
                reasons.append(f"{name} = {source}: {why}")
        document[name] = values if gather else (values[0] if values else None)
    if reasons:
        return Refusal(tuple(reasons[:50]))
    return NextInputs(document, tuple(parent.workflow_id for parent in parents))


def build_after_run(spec: NextSpec, parent: ParentRun) -> NextInputs | Refusal:
    """`when: run`: the next inputs from one succeeded run."""
    if parent.status is not RunStatus.SUCCEEDED:
        status = parent.status.value.lower() if parent.status else "did not succeed"
        return Refusal((f"{parent.label}: the run {status}; the next step starts only after a success",))
    return _fill(spec, [parent], gather=False)


def build_after_batch(spec: NextSpec, samples: Sequence[ParentRun]) -> NextInputs | Refusal:
    """`when: batch`: one next run from the batch's samples (in sample order): every reference an
    array over the succeeded samples; refused when none succeeded, or any failed and
    `require_all` is set."""
    failed = [s for s in samples if s.status is not RunStatus.SUCCEEDED]
    succeeded = [s for s in samples if s.status is RunStatus.SUCCEEDED]
    if spec.require_all and failed:
        names = ", ".join(f"{s.label} ({s.status.value if s.status else 'unknown'})" for s in failed[:20])
        more = f" and {len(failed) - 20} more" if len(failed) > 20 else ""
        return Refusal(
            (
                f"require_all is set and {len(failed)} of {len(samples)} samples did not succeed: "
                f"{names}{more}",
            )
        )
    if not succeeded:
        return Refusal((f"none of the batch's {len(samples)} samples succeeded",))
    return _fill(spec, succeeded, gather=True)


# -- what the parent's message says ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NextStep:
    """What a run's (or batch's) end did about its next step: the next inputs file started
    (`started`), or not, and why. Kept on the parent's run or batch item as `next_step`."""

    bucket: str
    key: str
    started: bool
    reasons: tuple[str, ...] = ()
    workflow_id: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def line(self) -> str:
        """One line for the parent's message."""
        if self.started:
            return f"Started {self.uri}"
        return "Next step not started: " + "; ".join(self.reasons)

    def to_map(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "bucket": self.bucket,
            "key": self.key,
            "started": self.started,
            "reasons": list(self.reasons),
        }
        if self.workflow_id:
            values["workflow_id"] = self.workflow_id
        return values

    @classmethod
    def from_map(cls, raw: Any) -> NextStep | None:
        if not isinstance(raw, Mapping) or not raw.get("key"):
            return None
        reasons = raw.get("reasons") or ()
        workflow_id = raw.get("workflow_id")
        return cls(
            bucket=str(raw.get("bucket") or ""),
            key=str(raw["key"]),
            started=raw.get("started") is True,
            reasons=tuple(str(r) for r in reasons) if isinstance(reasons, list | tuple) else (),
            workflow_id=str(workflow_id) if isinstance(workflow_id, str) else None,
        )
