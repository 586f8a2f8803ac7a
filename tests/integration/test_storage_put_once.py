"""ObjectStore.put_text_once on moto: the object is created once; a second put with the same key
makes no second version, whatever its body."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from courier.storage import ObjectStore

pytestmark = pytest.mark.integration


def test_an_object_is_created_once_and_never_gets_a_second_version() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="lab-runs")
        s3.put_bucket_versioning(Bucket="lab-runs", VersioningConfiguration={"Status": "Enabled"})
        store = ObjectStore(s3)
        version = store.put_text_once(
            "lab-runs", "runs/j/from-x.inputs.json", "{}", content_type="text/plain"
        )
        assert version
        again = store.put_text_once("lab-runs", "runs/j/from-x.inputs.json", "[]", content_type="text/plain")
        assert again is None
        versions = s3.list_object_versions(Bucket="lab-runs")["Versions"]
        assert [v["VersionId"] for v in versions] == [version]
        assert s3.get_object(Bucket="lab-runs", Key="runs/j/from-x.inputs.json")["Body"].read() == b"{}"
