"""An estimate of what a run cost, from its tasks' sizes and run times.

vCPU-hours and GB-hours are summed by pricing class (the job queue's name says Spot or On-Demand;
a queue that says neither is priced both ways) and multiplied by per-hour prices. The defaults are
AWS Fargate's published Linux/x86 prices in us-east-1: a stand-in for Batch on EC2 that is close
enough for an estimate; a deployment overrides them with its `OnDemandVcpuHour`, ... parameters.

The same arithmetic as the notify function's `CostEstimate`, over typed task views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from courier.ledger.records import TaskView

DEFAULT_ON_DEMAND_VCPU_HOUR: Final = 0.04048
DEFAULT_ON_DEMAND_GB_HOUR: Final = 0.004445
DEFAULT_SPOT_VCPU_HOUR: Final = 0.01334053
DEFAULT_SPOT_GB_HOUR: Final = 0.00146489

#: Only the attributes an estimate reads (a projection for the ledger query).
COST_ATTRIBUTES: Final = ("job_id", "started_at", "stopped_at", "vcpus", "memory_mib", "queue")


@dataclass(frozen=True, slots=True)
class Prices:
    on_demand_vcpu_hour: float = DEFAULT_ON_DEMAND_VCPU_HOUR
    on_demand_gb_hour: float = DEFAULT_ON_DEMAND_GB_HOUR
    spot_vcpu_hour: float = DEFAULT_SPOT_VCPU_HOUR
    spot_gb_hour: float = DEFAULT_SPOT_GB_HOUR


def pricing_class(queue: str | None) -> str:
    """`spot`, `on-demand` or `unknown`, from the job queue's name or ARN."""
    name = (queue or "").lower()
    if "spot" in name:
        return "spot"
    if "ondemand" in name.replace("-", "").replace("_", ""):
        return "on-demand"
    return "unknown"


@dataclass(slots=True)
class CostEstimate:
    """vCPU-hours and GB-hours by pricing class; `unknown` is priced both ways."""

    prices: Prices
    spot_vcpu_h: float = 0.0
    spot_gb_h: float = 0.0
    od_vcpu_h: float = 0.0
    od_gb_h: float = 0.0
    unknown_vcpu_h: float = 0.0
    unknown_gb_h: float = 0.0
    tasks_priced: int = 0
    tasks_unpriced: int = 0

    def add(self, task: TaskView) -> None:
        start, stop, vcpus = task.started_at, task.stopped_at, task.vcpus
        if start is None or stop is None or vcpus is None or stop < start:
            if start is not None or stop is not None:
                self.tasks_unpriced += 1
            return
        hours = (stop - start).total_seconds() / 3600
        vcpu_h, gb_h = vcpus * hours, (task.memory_mib or 0.0) / 1024 * hours
        match pricing_class(task.queue):
            case "spot":
                self.spot_vcpu_h += vcpu_h
                self.spot_gb_h += gb_h
            case "on-demand":
                self.od_vcpu_h += vcpu_h
                self.od_gb_h += gb_h
            case _:
                self.unknown_vcpu_h += vcpu_h
                self.unknown_gb_h += gb_h
        self.tasks_priced += 1

    @property
    def vcpu_hours(self) -> float:
        return self.spot_vcpu_h + self.od_vcpu_h + self.unknown_vcpu_h

    @property
    def gb_hours(self) -> float:
        return self.spot_gb_h + self.od_gb_h + self.unknown_gb_h

    def _known(self) -> float:
        p = self.prices
        return (
            self.spot_vcpu_h * p.spot_vcpu_hour
            + self.spot_gb_h * p.spot_gb_hour
            + self.od_vcpu_h * p.on_demand_vcpu_hour
            + self.od_gb_h * p.on_demand_gb_hour
        )

    @property
    def on_demand_total(self) -> float:
        """The estimate if every task of unknown pricing ran on On-Demand instances."""
        p = self.prices
        return (
            self._known()
            + self.unknown_vcpu_h * p.on_demand_vcpu_hour
            + self.unknown_gb_h * p.on_demand_gb_hour
        )

    @property
    def spot_total(self) -> float:
        """The estimate if every task of unknown pricing ran on Spot."""
        p = self.prices
        return self._known() + self.unknown_vcpu_h * p.spot_vcpu_hour + self.unknown_gb_h * p.spot_gb_hour

    @property
    def ambiguous(self) -> bool:
        return self.unknown_vcpu_h > 0 or self.unknown_gb_h > 0

    def short(self) -> str:
        """`~$1.23`, `~$0.40-$1.23` when the pricing class is not known, `-` with nothing priced."""
        if self.tasks_priced == 0:
            return "-"
        if self.ambiguous and f"{self.spot_total:.2f}" != f"{self.on_demand_total:.2f}":
            return f"~${self.spot_total:,.2f}-${self.on_demand_total:,.2f}"
        return f"~${self.on_demand_total:,.2f}"

    def describe(self) -> str:
        if self.tasks_priced == 0:
            return "No finished task with start, stop and size to estimate from."
        usage = f"{self.vcpu_hours:,.2f} vCPU-hours, {self.gb_hours:,.2f} GB-hours"
        if self.ambiguous:
            money = f"~${self.on_demand_total:,.2f} at On-Demand prices, ~${self.spot_total:,.2f} on Spot"
        else:
            money = f"~${self.on_demand_total:,.2f}"
        note = f" ({self.tasks_unpriced} task(s) without timings left out)" if self.tasks_unpriced else ""
        return f"Estimate: {money} for {usage} over {self.tasks_priced} task(s){note}."

    def to_dict(self) -> dict[str, Any]:
        return {
            "on_demand_usd": round(self.on_demand_total, 4),
            "spot_usd": round(self.spot_total, 4),
            "ambiguous": self.ambiguous,
            "vcpu_hours": round(self.vcpu_hours, 4),
            "gb_hours": round(self.gb_hours, 4),
            "tasks_priced": self.tasks_priced,
            "tasks_unpriced": self.tasks_unpriced,
        }
