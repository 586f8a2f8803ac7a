"""What the command cannot do, as one line that says what to do instead (exit status 2).

Every failure the user can act on is a `ConsoleError` by the time it leaves a command:
`explain` maps the typed errors of boto3, botocore and the Cromwell client onto one, and the
command group catches the rest of the known kinds, so no traceback reaches the terminal for them.
"""

from __future__ import annotations

from typing import Final

from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    TokenRetrievalError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from courier.cromwell import redact_url
from courier.errors import CromwellError, CromwellNotFound, CromwellUnavailable

#: Exit status of a command that could not do what it was asked (bad input, nothing found).
USAGE_EXIT: Final = 2

_DENIED: Final = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "403"}
)
_EXPIRED: Final = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
_BAD_CREDENTIALS: Final = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidAccessKeyId"}
)


class ConsoleError(Exception):
    """A one-line message for the user; the command exits with `exit_code`."""

    def __init__(self, message: str, *, exit_code: int = USAGE_EXIT) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def explain(  # noqa: PLR0911 - one answer per kind of failure
    exc: BaseException, *, cromwell_url: str | None = None
) -> ConsoleError | None:
    """The `ConsoleError` for a known failure, or None for an unexpected one (a bug)."""
    if isinstance(exc, ConsoleError):
        return exc
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ConsoleError(
            "no AWS credentials found: run `aws configure` or `aws sso login`, or set AWS_PROFILE"
        )
    if isinstance(exc, TokenRetrievalError):
        return ConsoleError(f"the AWS sign-in has expired: run `aws sso login` ({exc})")
    if isinstance(exc, ProfileNotFound):
        return ConsoleError(f"{exc}: check --profile or AWS_PROFILE (`aws configure list-profiles`)")
    if isinstance(exc, NoRegionError):
        return ConsoleError("no AWS region: pass --region or set AWS_REGION")
    if isinstance(exc, EndpointConnectionError | BotoConnectionError):
        return ConsoleError(
            f"cannot reach AWS ({exc}): check the network, --region, or that `make stack` is running"
        )
    if isinstance(exc, ClientError):
        return _client_error(exc)
    if isinstance(exc, CromwellUnavailable):
        where = redact_url(cromwell_url) if cromwell_url else "its URL"
        return ConsoleError(
            f"Cromwell at {where} is unreachable ({exc.http_status or 'no answer'}): check that it is up"
            " and that this machine can reach it (VPN, security group)"
        )
    if isinstance(exc, CromwellNotFound):
        return ConsoleError(f"Cromwell does not know this workflow: {exc}")
    if isinstance(exc, CromwellError):
        return ConsoleError(f"Cromwell refused the request: {exc}")
    return None


def _client_error(exc: ClientError) -> ConsoleError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")) or code
    operation = exc.operation_name
    if code in _DENIED:
        return ConsoleError(
            f"access denied ({operation}): your AWS identity may not read this deployment; ask for"
            " the runs console's permissions (docs/cli.md) or use another --profile"
        )
    if code in _EXPIRED:
        return ConsoleError("the AWS credentials have expired: sign in again (`aws sso login`)")
    if code in _BAD_CREDENTIALS:
        return ConsoleError(f"AWS does not accept these credentials ({code}): check AWS_PROFILE or the keys")
    if code == "ResourceNotFoundException":
        return ConsoleError(f"not found ({operation}): {message}; check --stack and --region")
    if code in ("NoSuchBucket", "NoSuchKey", "404"):
        return ConsoleError(f"not found in S3 ({operation}): {message}")
    return ConsoleError(f"AWS refused {operation}: {code}: {message}")
