"""SecretReader against moto's SSM and Secrets Manager; SecretValue never shows its value."""

from __future__ import annotations

import os
import pickle
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from courier.secrets import SecretError, SecretReader, SecretValue, parse_reference, write_ca_bundle

PEM = "-----BEGIN CERTIFICATE-----\nMIIBfakefakefake\n-----END CERTIFICATE-----\n"


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        yield (
            boto3.client("ssm", region_name="us-east-1"),
            boto3.client("secretsmanager", region_name="us-east-1"),
        )


class Counting:
    """Wraps a client and counts calls by method name."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append(name)
            return method(**kwargs)

        return call


def test_reads_an_ssm_secure_string_decrypted(aws: tuple[Any, Any]) -> None:
    ssm, secrets = aws
    ssm.put_parameter(Name="/courier/cromwell/ca", Value=PEM, Type="SecureString")

    value = SecretReader(ssm, secrets).get("ssm:/courier/cromwell/ca")

    assert value is not None
    assert value.reveal() == PEM


def test_reads_secrets_manager_by_name_and_by_arn(aws: tuple[Any, Any]) -> None:
    ssm, secrets = aws
    arn = secrets.create_secret(Name="courier/callback-token", SecretString="tok-123")["ARN"]
    reader = SecretReader(ssm, secrets)

    by_name = reader.get("secretsmanager:courier/callback-token")
    by_arn = reader.get(f"secretsmanager:{arn}")

    assert by_name is not None
    assert by_arn is not None
    assert by_name.reveal() == by_arn.reveal() == "tok-123"


def test_binary_secret_is_decoded(aws: tuple[Any, Any]) -> None:
    ssm, secrets = aws
    secrets.create_secret(Name="bin", SecretBinary=b"bytes-value")
    value = SecretReader(ssm, secrets).require("secretsmanager:bin")
    assert value.reveal() == "bytes-value"


def test_empty_reference_is_none(aws: tuple[Any, Any]) -> None:
    reader = SecretReader(*aws)
    assert reader.get("") is None
    assert reader.get("   ") is None
    with pytest.raises(SecretError, match="required"):
        reader.require("")


def test_values_are_cached_per_reader(aws: tuple[Any, Any]) -> None:
    ssm, secrets = aws
    ssm.put_parameter(Name="/p", Value="one", Type="SecureString")
    counting = Counting(ssm)
    reader = SecretReader(counting, secrets)  # type: ignore[arg-type]

    first = reader.get("ssm:/p")
    ssm.put_parameter(Name="/p", Value="two", Type="SecureString", Overwrite=True)
    second = reader.get("ssm:/p")

    assert counting.calls == ["get_parameter"]
    assert first is second
    reader.clear()
    third = reader.get("ssm:/p")
    assert third is not None
    assert third.reveal() == "two"


def test_missing_secret_raises_without_leaking(aws: tuple[Any, Any]) -> None:
    reader = SecretReader(*aws)
    with pytest.raises(SecretError) as caught:
        reader.get("ssm:/does/not/exist")
    assert "ParameterNotFound" in str(caught.value)
    with pytest.raises(SecretError, match="ResourceNotFound"):
        reader.get("secretsmanager:nope")


@pytest.mark.parametrize("reference", ["ssm:relative", "ssm:", "secretsmanager:", "vault:/x", "/plain/path"])
def test_malformed_references_are_refused(reference: str) -> None:
    with pytest.raises(SecretError):
        parse_reference(reference)


def test_missing_client_is_a_clear_error() -> None:
    with pytest.raises(SecretError, match="no SSM client"):
        SecretReader(None, None).get("ssm:/x")
    with pytest.raises(SecretError, match="no Secrets Manager client"):
        SecretReader(None, None).get("secretsmanager:x")


def test_secret_value_never_shows_itself(aws: tuple[Any, Any]) -> None:
    ssm, secrets = aws
    secrets.create_secret(Name="token", SecretString="hunter2-very-secret")
    value = SecretReader(ssm, secrets).require("secretsmanager:token")

    shown = [
        repr(value),
        str(value),
        f"{value}",
        f"{value!r}",
        f"{value:>30}",
        repr([value]),
        repr({"v": value}),
    ]

    assert all("hunter2" not in text for text in shown)
    assert value.reveal() == "hunter2-very-secret"
    assert value == SecretValue("hunter2-very-secret")
    assert value != SecretValue("other")
    with pytest.raises(TypeError):
        pickle.dumps(value)


def test_write_ca_bundle_is_content_addressed_private_and_written_once(tmp_path: Path) -> None:
    path = write_ca_bundle(PEM, directory=str(tmp_path))

    assert Path(path).read_text() == PEM
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    mtime = os.stat(path).st_mtime_ns
    assert write_ca_bundle(SecretValue(PEM), directory=str(tmp_path)) == path
    assert os.stat(path).st_mtime_ns == mtime

    other = write_ca_bundle(PEM.replace("fake", "other"), directory=str(tmp_path))
    assert other != path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([Path(path).name, Path(other).name])


def test_write_ca_bundle_refuses_what_is_not_a_certificate(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PEM"):
        write_ca_bundle("not a cert", directory=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_ca_bundle_from_ssm_feeds_the_client(aws: tuple[Any, Any], tmp_path: Path) -> None:
    ssm, secrets = aws
    ssm.put_parameter(Name="/courier/ca", Value=PEM, Type="SecureString")

    pem = SecretReader(ssm, secrets).require("ssm:/courier/ca")
    path = write_ca_bundle(pem, directory=str(tmp_path))

    assert Path(path).read_text() == PEM


def test_a_value_is_kept_max_age_seconds_and_refresh_reads_it_again(aws: tuple[Any, Any]) -> None:
    ssm, secrets = aws
    ssm.put_parameter(Name="/p", Value="one", Type="SecureString")
    kept = SecretReader(ssm, secrets, max_age=300)
    expiring = SecretReader(ssm, secrets, max_age=0)  # every read goes to SSM
    assert kept.require("ssm:/p").reveal() == expiring.require("ssm:/p").reveal() == "one"

    ssm.put_parameter(Name="/p", Value="two", Type="SecureString", Overwrite=True)

    assert kept.require("ssm:/p").reveal() == "one"
    assert expiring.require("ssm:/p").reveal() == "two"
    refreshed = kept.refresh("ssm:/p")
    assert refreshed is not None
    assert refreshed.reveal() == "two"
    assert kept.require("ssm:/p").reveal() == "two"


def test_a_rotated_ca_bundle_is_used_without_a_new_client(
    aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The functions' Cromwell client asks for the bundle at each request: once the kept value
    expires, a rotated PEM becomes a new file and the next request verifies with it."""
    from courier import clients  # noqa: PLC0415

    ssm, _ = aws
    monkeypatch.setenv("POWERTOOLS_PARAMETERS_MAX_AGE", "0")
    clients.aws.cache_clear()
    clients.secret_reader.cache_clear()
    try:
        ssm.put_parameter(Name="/courier/ca", Value=PEM, Type="SecureString")
        client = clients.cromwell("https://cromwell.internal", "ssm:/courier/ca", auth_secret="")
        assert callable(client.verify)
        first = client.verify()
        rotated = PEM.replace("fakefakefake", "rotatedrotated")
        ssm.put_parameter(Name="/courier/ca", Value=rotated, Type="SecureString", Overwrite=True)
        second = client.verify()
        assert first != second
        assert Path(second).read_text() == rotated
        assert client.credentials is None
    finally:
        clients.aws.cache_clear()
        clients.secret_reader.cache_clear()
