"""AWS Batch adapter: the tags of a job (`batch:ListTagsForResource`), cached per container.

The monitor reads everything else from the event payload; it never calls DescribeJobs (Cromwell
already polls Batch close to its rate limits). Tags are asked for only when an event carries
none, and each job is asked about once per container: a job's tags are set when it is submitted
and never change.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from courier.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

DEFAULT_CACHE_ENTRIES: Final = 50_000

#: Answers that will not change by asking again: the job is gone or we may not read it.
_PERMANENT_ERRORS: Final = frozenset(
    {"ClientException", "AccessDeniedException", "ResourceNotFoundException"}
)


class JobTagReader:
    """`tags(job_arn)`: the job's tags, {} when it has none or they cannot be read.

    A least-recently-used cache of `max_entries` jobs keeps a long-lived container bounded.
    Transient failures (throttling, network) are not cached, so a later event asks again.
    """

    def __init__(self, client: BatchClient, *, max_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        self._client = client
        self._max = max_entries
        self._cache: OrderedDict[str, dict[str, str]] = OrderedDict()
        self.calls = 0

    def tags(self, job_arn: str) -> dict[str, str]:
        cached = self._cache.get(job_arn)
        if cached is not None:
            self._cache.move_to_end(job_arn)
            return cached
        self.calls += 1
        try:
            answer = self._client.list_tags_for_resource(resourceArn=job_arn)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            logger.warning("cannot read the tags of a Batch job", extra={"job_arn": job_arn, "code": code})
            if code in _PERMANENT_ERRORS:
                self._remember(job_arn, {})
            return {}
        except BotoCoreError as exc:
            logger.warning("cannot reach Batch for job tags", extra={"job_arn": job_arn, "error": str(exc)})
            return {}
        tags = {str(k): str(v) for k, v in (answer.get("tags") or {}).items()}
        self._remember(job_arn, tags)
        return tags

    def _remember(self, job_arn: str, tags: dict[str, str]) -> None:
        self._cache[job_arn] = tags
        if len(self._cache) > self._max:
            self._cache.popitem(last=False)
