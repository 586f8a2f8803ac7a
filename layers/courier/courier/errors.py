"""Typed exceptions. Each carries the context a person needs to act on it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class CourierError(Exception):
    """Base of every error Courier raises on purpose."""


class ConfigurationError(CourierError):
    """A function's settings (environment variables) are missing or invalid."""

    def __init__(self, function: str, problems: Sequence[str]) -> None:
        self.function = function
        self.problems = list(problems)
        detail = "; ".join(self.problems)
        super().__init__(f"{function}: invalid configuration: {detail}")


# --- Cromwell ---------------------------------------------------------------------------------


class CromwellError(CourierError):
    """Cromwell answered with an error, or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        cromwell_status: str | None = None,
        errors: Sequence[str] = (),
        url: str | None = None,
    ) -> None:
        self.message = message
        self.http_status = http_status
        self.cromwell_status = cromwell_status
        self.errors = list(errors)
        self.url = url
        parts = [message]
        if http_status is not None:
            parts.append(f"(HTTP {http_status})")
        if self.errors:
            parts.append("errors: " + "; ".join(self.errors))
        super().__init__(" ".join(parts))


class CromwellUnavailable(CromwellError):
    """Connection refused, timed out, TLS failure, 5xx or 503 after retries: try again later."""


class CromwellAuthError(CromwellError):
    """Cromwell (or the proxy in front of it) refused Courier's credentials, or asked for some
    and none are configured: HTTP 401, or a 403 that is not Cromwell's own, after the credential
    was read again once. Not retried: only a person fixing the secret helps. `secret` names the
    secret (its name or ARN, never its value), or is empty when none is configured."""

    def __init__(self, message: str, *, secret: str = "", **kwargs: Any) -> None:
        self.secret = secret
        super().__init__(message, **kwargs)


class CromwellBadRequest(CromwellError):
    """Cromwell refused the request (HTTP 400): retrying the same request will not help."""


class CromwellNotFound(CromwellError):
    """Cromwell does not know the workflow id (HTTP 404)."""


class WorkflowIdInUse(CromwellBadRequest):
    """The requested workflow id exists already: the run was submitted before."""


# --- Runs -------------------------------------------------------------------------------------


class RunRejected(CourierError):
    """A dropped run failed validation. `reasons` are specific, user-facing sentences."""

    def __init__(self, reasons: Sequence[str], *, missing_files: Sequence[str] = ()) -> None:
        self.reasons = list(reasons)
        #: Files the run needs that are not in the folder (yet): no WDL at all, an import not
        #: found. Submit waits a bounded time for these before it refuses the run.
        self.missing_files = list(missing_files)
        super().__init__("run refused: " + " | ".join(self.reasons))


class InvalidEvent(CourierError):
    """An incoming event does not have the shape Courier expects."""

    def __init__(self, message: str, *, event: Any = None) -> None:
        self.event = event
        super().__init__(message)


class LedgerError(CourierError):
    """The ledger (DynamoDB) refused or failed a write after retries."""
