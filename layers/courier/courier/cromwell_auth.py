"""Credentials for a Cromwell behind a proxy that asks for them (nginx with basic auth, an
Application Load Balancer, an API gateway with a key).

One Secrets Manager secret holds one JSON object, of one of three shapes:

    {"type": "basic",  "username": "courier", "password": "..."}
    {"type": "bearer", "token": "..."}
    {"type": "header", "name": "x-api-key", "value": "..."}

`SecretCredentials` reads it once per container and again when Cromwell refuses it
(`refresh`); `CromwellClient` sends the headers of `current()` with every request. Nothing here
shows a value: the credential's repr names only its kind, and parse errors name only fields.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from typing import Final, Protocol

from courier.errors import CromwellAuthError
from courier.secrets import SecretError, SecretReader

KINDS: Final = ("basic", "bearer", "header")
#: A header name is an RFC 9110 token; these are the transport's own and may not be replaced.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_HEADERS: Final = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "cookie"}
)


class CromwellCredential:
    """Headers to send to Cromwell. Its repr, str and format never show the value."""

    __slots__ = ("_headers", "kind")

    def __init__(self, kind: str, headers: dict[str, str]) -> None:
        self.kind = kind
        self._headers = dict(headers)

    def headers(self) -> dict[str, str]:
        return dict(self._headers)

    @property
    def header_names(self) -> list[str]:
        return list(self._headers)

    def __repr__(self) -> str:
        return f"CromwellCredential({self.kind!r}, headers={self.header_names!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> str:
        raise TypeError("CromwellCredential cannot be pickled")

    @classmethod
    def basic(cls, username: str, password: str) -> CromwellCredential:
        if ":" in username:
            raise ValueError("basic: the username may not contain ':'")
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        return cls("basic", {"Authorization": f"Basic {token}"})

    @classmethod
    def bearer(cls, token: str) -> CromwellCredential:
        return cls("bearer", {"Authorization": f"Bearer {token}"})

    @classmethod
    def header(cls, name: str, value: str) -> CromwellCredential:
        if not _TOKEN.match(name) or name.lower() in _RESERVED_HEADERS:
            raise ValueError("header: 'name' must be an HTTP header name other than the transport's own")
        return cls("header", {name: value})


def parse_credential(text: str) -> CromwellCredential:
    """The credential in a secret's text. `ValueError` says which field is wrong, never a value."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("the value is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the value is not a JSON object")
    kind = data.get("type")
    if kind not in KINDS:
        raise ValueError("'type' must be one of basic, bearer, header")
    required = {"basic": ("username", "password"), "bearer": ("token",), "header": ("name", "value")}[kind]
    fields: dict[str, str] = {}
    for name in required:
        value = data.get(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{kind}: '{name}' must be a non-empty string")
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"{kind}: '{name}' may not contain line breaks")
        fields[name] = value
    if kind == "basic":
        return CromwellCredential.basic(fields["username"], fields["password"])
    if kind == "bearer":
        return CromwellCredential.bearer(fields["token"])
    return CromwellCredential.header(fields["name"], fields["value"])


class CredentialSource(Protocol):
    """Where the client's credential comes from. `name` says where to look when it is refused
    (a secret's name or ARN); `refresh` reads it again after a refusal."""

    @property
    def name(self) -> str: ...

    def current(self) -> CromwellCredential | None: ...

    def refresh(self) -> CromwellCredential | None: ...


class StaticCredentials:
    """A credential given directly (tests; a command line that has the value in hand)."""

    def __init__(self, credential: CromwellCredential | None, name: str = "") -> None:
        self._credential = credential
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def current(self) -> CromwellCredential | None:
        return self._credential

    def refresh(self) -> CromwellCredential | None:
        return self._credential


class SecretCredentials:
    """The credential in a Secrets Manager secret (or an SSM SecureString), read at the first
    call and kept; read again, once, by `refresh`. A secret that cannot be read or parsed raises
    `CromwellAuthError` naming it: it is a setting to fix, not a moment to wait out."""

    def __init__(self, reader: SecretReader, reference: str) -> None:
        self._reader = reader
        self._reference = (
            reference
            if reference.startswith(("ssm:", "secretsmanager:"))
            else (f"secretsmanager:{reference}")
        )
        self._credential: CromwellCredential | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._reference.split(":", 1)[1]

    def current(self) -> CromwellCredential:
        with self._lock:
            if self._credential is None:
                self._credential = self._load(force=False)
            return self._credential

    def refresh(self) -> CromwellCredential:
        with self._lock:
            self._credential = self._load(force=True)
            return self._credential

    def _load(self, *, force: bool) -> CromwellCredential:
        try:
            secret = self._reader.refresh(self._reference) if force else self._reader.get(self._reference)
        except SecretError as exc:
            raise CromwellAuthError(
                f"Courier cannot read Cromwell's credential: {exc.reason}; check the secret {self.name}",
                secret=self.name,
            ) from None
        if secret is None:
            raise CromwellAuthError("no Cromwell credential secret is configured", secret=self.name)
        try:
            return parse_credential(secret.reveal())
        except ValueError as exc:
            raise CromwellAuthError(
                f"the secret {self.name} is not a Cromwell credential ({exc}); see docs/deploy.md",
                secret=self.name,
            ) from None


def credentials_from(reader: SecretReader, reference: str) -> SecretCredentials | None:
    """The source for a configured secret reference, or None when it is empty."""
    return SecretCredentials(reader, reference) if reference.strip() else None
