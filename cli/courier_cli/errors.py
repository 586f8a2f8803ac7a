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
from courier.errors import CromwellAuthError, CromwellError, CromwellNotFound, CromwellUnavailable

#: Names the secret of Cromwell's credential, over what the deployment says (`deployment`).
AUTH_SECRET_ENV: Final = "COURIER_CROMWELL_AUTH_SECRET"  # noqa: S105  # nosec B105: a variable name

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
    where = redact_url(cromwell_url) if cromwell_url else "its URL"
    if isinstance(exc, CromwellAuthError):
        return _auth_error(exc, where)
    if isinstance(exc, CromwellUnavailable):
        return ConsoleError(
            f"Cromwell at {where} is unreachable ({exc.http_status or 'no answer'}): check that it is up"
            " and that this machine can reach it (VPN, security group)"
        )
    if isinstance(exc, CromwellNotFound):
        return ConsoleError(f"Cromwell does not know this workflow: {exc}")
    if isinstance(exc, CromwellError):
        return ConsoleError(f"Cromwell refused the request: {exc}")
    return None


def _auth_error(exc: CromwellAuthError, where: str) -> ConsoleError:
    """Cromwell's credential refused, missing or unreadable: which secret, and what to check.
    The messages name the secret, never its value."""
    secret = exc.secret
    if exc.http_status is None:  # the secret could not be read, or holds no credential
        hint = (
            "; reading it needs secretsmanager:GetSecretValue on it (docs/cli.md) or another --profile"
            if "AccessDenied" in exc.message
            else ""
        )
        return ConsoleError(exc.message.replace("Courier cannot", "cannot") + hint)
    if not secret:
        return ConsoleError(
            f"Cromwell at {where} asks for a credential and none is configured: set"
            f" {AUTH_SECRET_ENV} to the secret holding it (the stack's CromwellAuthSecretArn)"
        )
    return ConsoleError(
        f"Cromwell at {where} refused the credential in the secret {secret}: check that the secret"
        f" holds the credential Cromwell's proxy accepts now (docs/cli.md), or name another in"
        f" {AUTH_SECRET_ENV}"
    )


def _client_error(exc: ClientError) -> ConsoleError:  # noqa: PLR0911 - one answer per kind
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")) or code
    operation = exc.operation_name
    if code in _DENIED:
        return ConsoleError(
            f"access denied ({operation}): your AWS identity lacks a permission the courier command"
            " needs on this deployment; ask for them (docs/cli.md, Permissions) or use another --profile"
        )
    if code in _EXPIRED:
        return ConsoleError("the AWS credentials have expired: sign in again (`aws sso login`)")
    if code in _BAD_CREDENTIALS:
        return ConsoleError(f"AWS does not accept these credentials ({code}): check AWS_PROFILE or the keys")
    if code == "ResourceNotFoundException":
        return ConsoleError(f"not found ({operation}): {message}; check --stack and --region")
    if code == "NoSuchBucket":
        return ConsoleError(f"no such bucket ({operation}): check the s3:// URL, --stack and --region")
    if code in ("NoSuchKey", "404"):
        return ConsoleError(f"not found in S3 ({operation}): {message}; check the key or s3:// URL")
    return ConsoleError(f"AWS refused {operation}: {code}: {message}")
