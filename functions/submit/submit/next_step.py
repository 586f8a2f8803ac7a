"""A run's place in a pipeline (docs/pipelines.md), as submit sees it.

* `check_references`: the references of `courier_next` name this workflow's outputs and inputs
  (part of planning: a refusal lands on the run's receipt with every other problem).
* `PipelinePlace`: what the run brings into its pipeline. Its lineage (the chain of run folders
  and its parents) comes from the ledger item notify wrote before the run's inputs file, never
  from the file itself, so an uploaded `from-*.inputs.json` cannot claim a parent; it labels the
  run with its parent(s), refuses a loop or a chain deeper than `MaxChainDepth`, a `batch`-mode
  next step outside a batch, and keeps on the run item what notify needs at the run's end.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from courier.conventions import LABEL_PARENT, LABEL_PARENT_BATCH, OPTION_NEXT
from courier.errors import RunRejected
from courier.pipeline import (
    DEFAULT_MAX_CHAIN_DEPTH,
    MAX_CAPTURED_INPUT_BYTES,
    WHEN_BATCH,
    Lineage,
    NextSpec,
    as_folder,
    captured_inputs,
    chain_problem,
    is_next_inputs,
    loop_problem,
)
from submit.folder import OPTIONS_NAME, Findings, shown
from submit.labels import tag_safe

if TYPE_CHECKING:
    from submit.plan import SubmissionPlan


class LineageSource(Protocol):
    """The lineage notify recorded for a next run's inputs file (`courier.ledger.pipeline`)."""

    def lineage(self, bucket: str, key: str) -> Lineage | None: ...


def check_references(spec: NextSpec, workflow: Any, findings: Findings, *, folder: str) -> None:
    """Every `outputs.` reference names an output of `workflow`, every `inputs.` one an input it
    takes (`<workflow>.<input>` or `<workflow>.<call>.<input>`), and the next folder is not this
    run's own `folder` (a sample sheet is refused whole for it, not row by row)."""
    own = loop_problem((as_folder(folder),), spec.folder)
    if own is not None:
        findings.refuse(f"{OPTIONS_NAME}: {OPTION_NEXT}: {own}")
    name = str(workflow.name)
    outputs = {f"{name}.{decl.name}" for decl in workflow.outputs or ()}
    inputs = {f"{name}.{binding.name}" for binding in workflow.available_inputs}
    where = f"{OPTIONS_NAME}: {OPTION_NEXT}"
    for ref in spec.references:
        known = outputs if ref.source == "outputs" else inputs
        if ref.key in known:
            continue
        if ref.workflow != name:
            findings.refuse(
                f"{where}: '{shown(str(ref))}' names workflow {shown(ref.workflow)}; this run's is {name}"
            )
            continue
        kind = "output" if ref.source == "outputs" else "input"
        listed = ", ".join(sorted(known)[:12]) or "none"
        findings.refuse(
            f"{where}: '{shown(str(ref))}': the workflow has no {kind} {ref.key} (its {kind}s: {listed})"
        )


def parent_labels(lineage: Lineage | None) -> dict[str, str]:
    """The labels that name a next run's parent: its batch, or the one run it was built from."""
    if lineage is None:
        return {}
    if lineage.parent_batch:
        return {LABEL_PARENT_BATCH: tag_safe(lineage.parent_batch)}
    if lineage.parents:
        return {LABEL_PARENT: tag_safe(",".join(lineage.parents))}
    return {}


@dataclass(frozen=True, slots=True)
class PipelinePlace:
    lineages: LineageSource
    max_depth: int = DEFAULT_MAX_CHAIN_DEPTH

    def lineage(self, bucket: str, key: str) -> Lineage | None:
        """The lineage of a next run's inputs file; None for any other upload (no ledger read)."""
        return self.lineages.lineage(bucket, key) if is_next_inputs(key) else None

    def place(
        self, plan: SubmissionPlan, lineage: Lineage | None, *, folder: str, in_batch: bool
    ) -> SubmissionPlan:
        """`plan` with what the run item keeps of its pipeline; RunRejected with every reason
        when the run may not take its place (too deep, a loop, `batch` outside a batch)."""
        spec = plan.next_step
        if lineage is None and spec is None:
            return plan
        chain = lineage.chain if lineage is not None else Lineage.root(folder).chain
        reasons: list[str] = []
        if len(chain) > self.max_depth:
            reasons.append(
                f"this run would be step {len(chain)} of its pipeline ({' -> '.join(chain)}); a pipeline is "
                f"at most {self.max_depth} steps deep (MaxChainDepth)"
            )
        fields: dict[str, Any] = {"chain": list(chain)}
        if lineage is not None:
            fields.update({k: v for k, v in lineage.to_map().items() if k != "chain"})
        if spec is not None:
            where = f"{OPTIONS_NAME}: {OPTION_NEXT}"
            if spec.when == WHEN_BATCH and not in_batch:
                reasons.append(
                    f'{where}: "when": "batch" starts the next run when a batch ends, and this run is not '
                    'part of one (a sample sheet\'s rows are); use "when": "run"'
                )
            problem = chain_problem(chain, spec.folder, self.max_depth)
            if problem is not None:
                reasons.append(f"{where}: {problem}")
            captured = captured_inputs(spec, json.loads(plan.workflow_inputs))
            size = len(json.dumps(captured, ensure_ascii=False).encode())
            if size > MAX_CAPTURED_INPUT_BYTES:
                reasons.append(
                    f"{where}: the inputs it passes on are {size:,} bytes; at most "
                    f"{MAX_CAPTURED_INPUT_BYTES:,} (pass large values in a file, by its s3:// path)"
                )
            fields.update(
                next=json.dumps(spec.to_map()), next_inputs=json.dumps(captured, ensure_ascii=False)
            )
        if reasons:
            raise RunRejected(reasons)
        return replace(plan, pipeline=fields)


def labels_with(extra: Mapping[str, str] | None, lineage: Lineage | None) -> dict[str, str] | None:
    """The deployment's labels for a run, with its parents'."""
    merged = {**(extra or {}), **parent_labels(lineage)}
    return merged or None
