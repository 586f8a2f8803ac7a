"""Secrets by reference: `ssm:/path/name` (SecureString, decrypted) or `secretsmanager:<name-or-arn>`.

Settings hold references, never values. A `SecretReader` is built once per container with the
clients passed in and reads through Powertools parameters providers: each value is kept for
`max_age` seconds (5 minutes by default, `POWERTOOLS_PARAMETERS_MAX_AGE` overrides it), so a rotated
CA bundle, Slack webhook or token is picked up without a cold start; `refresh(reference)` reads
one again at once (a credential Cromwell refused). Values travel wrapped in `SecretValue`, whose
repr and str never show them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import TYPE_CHECKING, Final

from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError

from courier.errors import CourierError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ssm import SSMClient

SSM_PREFIX: Final = "ssm:"
SECRETS_MANAGER_PREFIX: Final = "secretsmanager:"
_PEM_MARKER: Final = "-----BEGIN CERTIFICATE-----"
DEFAULT_MAX_AGE: Final = 300
MAX_AGE_ENV: Final = "POWERTOOLS_PARAMETERS_MAX_AGE"


class SecretError(CourierError):
    """A secret reference is malformed, or its value could not be read."""

    def __init__(self, reference: str, reason: str) -> None:
        self.reference = reference
        self.reason = reason
        super().__init__(f"secret {reference!r}: {reason}")


class SecretValue:
    """A secret's text. `reveal()` returns it; repr, str and format show only asterisks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretValue('**********')"

    def __str__(self) -> str:
        return "**********"

    def __format__(self, spec: str) -> str:
        return str(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> str:
        raise TypeError("SecretValue cannot be pickled")


def parse_reference(reference: str) -> tuple[str, str] | None:
    """`("ssm", "/path")`, `("secretsmanager", "name-or-arn")`, or None for an empty reference."""
    ref = reference.strip()
    if not ref:
        return None
    if ref.startswith(SSM_PREFIX):
        name = ref[len(SSM_PREFIX) :]
        if not name.startswith("/") or len(name) < 2:
            raise SecretError(reference, "an SSM reference looks like ssm:/path/name")
        return "ssm", name
    if ref.startswith(SECRETS_MANAGER_PREFIX):
        name = ref[len(SECRETS_MANAGER_PREFIX) :]
        if not name:
            raise SecretError(
                reference, "a Secrets Manager reference looks like secretsmanager:<name-or-arn>"
            )
        return "secretsmanager", name
    raise SecretError(reference, "expected ssm:/path/name or secretsmanager:<name-or-arn>")


class SecretReader:
    """Resolves references to values, each kept `max_age` seconds (None: the environment's
    `POWERTOOLS_PARAMETERS_MAX_AGE`, else 300)."""

    def __init__(
        self,
        ssm_client: SSMClient | None = None,
        secrets_client: SecretsManagerClient | None = None,
        *,
        max_age: int | None = None,
    ) -> None:
        self._ssm = SSMProvider(boto3_client=ssm_client) if ssm_client is not None else None
        self._secrets = SecretsProvider(boto3_client=secrets_client) if secrets_client is not None else None
        self.max_age = max_age if max_age is not None else _max_age_from_env()
        self._values: dict[str, SecretValue] = {}

    def get(self, reference: str) -> SecretValue | None:
        """The value behind `reference`; None when the reference is empty."""
        return self._read(reference, force=False)

    def require(self, reference: str) -> SecretValue:
        value = self.get(reference)
        if value is None:
            raise SecretError(reference, "a secret is required here but the reference is empty")
        return value

    def refresh(self, reference: str) -> SecretValue | None:
        """Read `reference` again now, whatever the age of the value kept."""
        return self._read(reference, force=True)

    def clear(self) -> None:
        for provider in (self._ssm, self._secrets):
            if provider is not None:
                provider.clear_cache()  # type: ignore[no-untyped-call]
        self._values.clear()

    def _read(self, reference: str, *, force: bool) -> SecretValue | None:
        parsed = parse_reference(reference)
        if parsed is None:
            return None
        kind, name = parsed
        try:
            if kind == "ssm":
                if self._ssm is None:
                    raise SecretError(reference, "no SSM client configured")
                raw = self._ssm.get(name, max_age=self.max_age, decrypt=True, force_fetch=force)
            else:
                if self._secrets is None:
                    raise SecretError(reference, "no Secrets Manager client configured")
                raw = self._secrets.get(name, max_age=self.max_age, force_fetch=force)
        except GetParameterError as exc:
            raise SecretError(reference, f"cannot be read ({_error_code(exc)})") from None
        if raw is None:
            raise SecretError(reference, "the secret has no value")
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        kept = self._values.get(reference)
        if kept is not None and kept.reveal() == text:
            return kept  # the same object while the value does not change
        value = self._values[reference] = SecretValue(text)
        return value


def _max_age_from_env() -> int:
    raw = os.environ.get(MAX_AGE_ENV, "").strip()
    return int(raw) if raw.isdigit() else DEFAULT_MAX_AGE


def _error_code(exc: GetParameterError) -> str:
    """The AWS error code behind a provider's error (Powertools keeps the original as context);
    never the message, which is not ours to show."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code", "")) or "ClientError"
    if isinstance(cause, BotoCoreError | KeyError):
        return type(cause).__name__
    return type(cause).__name__ if cause is not None else "unknown error"


# /tmp is the only writable directory of a Lambda function; the file name is a content hash and
# the file is created 0600, so a predictable path gives no one else a way in.
def write_ca_bundle(pem: str | SecretValue, directory: str = "/tmp") -> str:  # noqa: S108  # nosec B108
    """Write a PEM certificate bundle once and return its path.

    The file name is derived from the content, so a container writes each bundle once and a
    rotated certificate gets a new file. The file is private to the process user (0600).
    """
    text = pem.reveal() if isinstance(pem, SecretValue) else pem
    if _PEM_MARKER not in text:
        raise ValueError("the CA bundle is not a PEM certificate")
    data = text.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()[:32]
    path = os.path.join(directory, f"cromwell-ca-{digest}.pem")
    if os.path.isfile(path):
        with open(path, "rb") as existing:
            if existing.read() == data:
                return path
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
