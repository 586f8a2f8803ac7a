"""ReconcilerFunction, invoked by its schedule: one sweep of `monitor.sweep.Reconciler` per
invocation. The reconciler is put together by `monitor.composition.compose_reconciler` at the
first invocation, or passed in through `service=`."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from courier.errors import CromwellAuthError
from courier.observability import logger, metrics, tracer
from monitor.composition import compose_reconciler
from monitor.sweep import Reconciler


@cache
def default_service() -> Reconciler:
    """The reconciler of this container, put together at its first invocation."""
    return compose_reconciler()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, service: Reconciler | None = None
) -> dict[str, Any]:
    service = service or default_service()
    try:
        report = service.sweep().as_dict()
    except CromwellAuthError as exc:
        # counted (`CromwellAuthFailed`, with its alarm) by the client; the next sweep tries again
        logger.error("sweep stopped: Cromwell refused Courier's credentials", extra={"error": str(exc)})
        return {"error": exc.message, "secret": exc.secret}
    for key in (
        "active",
        "ended",
        "advanced",
        "stuck_alerts",
        "attributed",
        "still_unattributed",
        "adopted",
        "windows_closed",
    ):
        metrics.add_metric(name=f"Reconcile_{key}", unit=MetricUnit.Count, value=report[key])
    metrics.add_metric(name="Reconcile_cromwell_calls", unit=MetricUnit.Count, value=report["cromwell_calls"])
    if report["errors"]:
        logger.warning("sweep finished with errors", extra={"errors": report["errors"]})
    logger.info("sweep finished", extra={"report": report, "trigger": event.get("id")})
    return report
