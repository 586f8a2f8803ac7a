"""AWS console links for the things a person looks at: a task's log stream, a call's S3 folder,
an S3 object. (The notify function still carries its own copy, `notify.links`.)"""

from __future__ import annotations

from urllib.parse import quote

DEFAULT_LOG_GROUP = "/aws/batch/job"


def console_host(region: str) -> str:
    if region.startswith("cn-"):
        return f"https://{region}.console.amazonaws.cn"
    if region.startswith("us-gov-"):
        return f"https://{region}.console.amazonaws-us-gov.com"
    return f"https://{region}.console.aws.amazon.com"


def _console_fragment(value: str) -> str:
    """The CloudWatch console's fragment encoding: URL-encode everything, then write `%` as `$25`."""
    return quote(value, safe="").replace("%", "$25")


def log_stream_url(region: str, log_stream: str, log_group: str = DEFAULT_LOG_GROUP) -> str:
    group = _console_fragment(log_group or DEFAULT_LOG_GROUP)
    stream = _console_fragment(log_stream)
    return (
        f"{console_host(region)}/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{group}/log-events/{stream}"
    )


def split_s3_uri(uri: str) -> tuple[str, str] | None:
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[5:].partition("/")
    return (bucket, key) if bucket else None


def s3_folder_url(region: str, bucket: str, prefix: str) -> str:
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return (
        f"{console_host(region)}/s3/buckets/{quote(bucket, safe='')}"
        f"?region={region}&prefix={quote(prefix, safe='')}&showversions=false"
    )


def s3_object_url(region: str, bucket: str, key: str) -> str:
    bucket_part = quote(bucket, safe="")
    return f"{console_host(region)}/s3/object/{bucket_part}?region={region}&prefix={quote(key, safe='')}"


def s3_uri_url(region: str, uri: str) -> str | None:
    """Console link of an `s3://` URI: a folder when it ends with `/`, else an object."""
    parts = split_s3_uri(uri)
    if parts is None:
        return None
    bucket, key = parts
    if not key or key.endswith("/"):
        return s3_folder_url(region, bucket, key)
    return s3_object_url(region, bucket, key)
