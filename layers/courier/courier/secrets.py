"""Secrets by reference: `ssm:/path/name` (SecureString, decrypted) or `secretsmanager:<name-or-arn>`.

Settings hold references, never values. A `SecretReader` is built once per container with the
clients passed in; it fetches each reference once and keeps the value for the container's life.
Values travel wrapped in `SecretValue`, whose repr and str never show them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from courier.errors import CourierError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ssm import SSMClient

SSM_PREFIX: Final = "ssm:"
SECRETS_MANAGER_PREFIX: Final = "secretsmanager:"
_PEM_MARKER: Final = "-----BEGIN CERTIFICATE-----"


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
    """Resolves references to values, once per reference for the life of the reader."""

    def __init__(
        self,
        ssm_client: SSMClient | None = None,
        secrets_client: SecretsManagerClient | None = None,
    ) -> None:
        self._ssm = ssm_client
        self._secrets = secrets_client
        self._cache: dict[str, SecretValue] = {}

    def get(self, reference: str) -> SecretValue | None:
        """The value behind `reference`; None when the reference is empty."""
        parsed = parse_reference(reference)
        if parsed is None:
            return None
        cached = self._cache.get(reference)
        if cached is not None:
            return cached
        kind, name = parsed
        try:
            text = self._read_ssm(reference, name) if kind == "ssm" else self._read_secret(reference, name)
        except (ClientError, BotoCoreError) as exc:
            code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
            raise SecretError(reference, f"cannot be read ({code or type(exc).__name__})") from exc
        value = SecretValue(text)
        self._cache[reference] = value
        return value

    def require(self, reference: str) -> SecretValue:
        value = self.get(reference)
        if value is None:
            raise SecretError(reference, "a secret is required here but the reference is empty")
        return value

    def clear(self) -> None:
        self._cache.clear()

    def _read_ssm(self, reference: str, name: str) -> str:
        if self._ssm is None:
            raise SecretError(reference, "no SSM client configured")
        answer = self._ssm.get_parameter(Name=name, WithDecryption=True)
        return answer["Parameter"].get("Value", "")

    def _read_secret(self, reference: str, name: str) -> str:
        if self._secrets is None:
            raise SecretError(reference, "no Secrets Manager client configured")
        answer = self._secrets.get_secret_value(SecretId=name)
        if "SecretString" in answer:
            return answer["SecretString"]
        binary = answer.get("SecretBinary")
        if binary is None:
            raise SecretError(reference, "the secret has no value")
        return binary.decode("utf-8")


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
