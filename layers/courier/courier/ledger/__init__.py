"""The run ledger (DynamoDB): runs, tasks and the outbox of notification events."""

from courier.ledger.runs import ActiveRun, RunLedger
from courier.models import RunRecord

__all__ = ["ActiveRun", "RunLedger", "RunRecord"]
