"""The receipt beside each inputs file: defined in the layer (`courier.receipt`), where notify
writes the same receipt for a next step it refuses."""

from __future__ import annotations

from courier.receipt import (
    MESSAGE_SUBMITTED,
    MESSAGE_WAITING,
    SCHEMA_VERSION,
    Receipt,
    ReceiptStatus,
    iso_utc,
    refusal_message,
)

__all__ = [
    "MESSAGE_SUBMITTED",
    "MESSAGE_WAITING",
    "SCHEMA_VERSION",
    "Receipt",
    "ReceiptStatus",
    "iso_utc",
    "refusal_message",
]
