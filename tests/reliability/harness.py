"""Building blocks of the reliability suites: the submit function wired to moto (a versioned S3
bucket, the ledger table) and the local Cromwell-compatible server, S3 events as EventBridge
delivers them, injectable faults (a client wrapper that fails chosen calls, a collaborator that
"kills" the function at a chosen step), and the invariants checked after every scenario.

Nothing here patches the code under test: every fault is a collaborator passed to a constructor.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from courier.conventions import receipt_key
from courier.cromwell import CromwellClient
from courier.ledger import schema as s
from courier.ledger.records import decode_image
from local.cromwell_api import CromwellTestServer
from submit import handler as submit_handler
from submit.composition import compose
from submit.service import SubmitService
from tests.support.cromwell_helpers import HELLO_WDL
from tests.support.monitor_fixtures import Ctx
from tests.support.submit_fixtures import RUNS_BUCKET as BUCKET
from tests.support.submit_fixtures import TABLE, object_created_event

#: The submit function's environment in these suites: the ledger table, no wait for late WDL.
SUBMIT_ENV: Mapping[str, str] = {
    "LEDGER_TABLE": TABLE,
    "CROMWELL_URL": "http://127.0.0.1:9",
    "WDL_WAIT_SECONDS": "0",
    "WDL_POLL_SECONDS": "0.01",
}

# -- faults ------------------------------------------------------------------------------------


class Killed(BaseException):
    """The function instance stopped here (timeout, out of memory, host lost). A BaseException,
    so that no `except Exception` of the code under test (nor Powertools' batch processor) can
    catch it: the whole invocation ends, as it does when Lambda stops an instance."""


def client_error(code: str, operation: str, message: str = "injected") -> ClientError:
    status = 400 if code.endswith("Exception") or code == "ThrottlingException" else 503
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


def throttled(operation: str) -> ClientError:
    """What a DynamoDB client raises once its own retries gave up on a throttled table."""
    return client_error("ProvisionedThroughputExceededException", operation, "throughput exceeded")


class FlakyClient:
    """Wraps a boto3 client; the next calls of chosen operations raise the queued errors first.

    `fail("get_object", err, err)` makes the next two `get_object` calls raise `err`; every other
    call goes to the wrapped client. `calls` counts every call by operation name (failed included).
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._queued: dict[str, list[Exception]] = {}
        self.calls: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    def fail(self, operation: str, *errors: Exception) -> FlakyClient:
        self._queued.setdefault(operation, []).extend(errors)
        return self

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target) or name.startswith("_") or name in ("get_paginator", "meta"):
            if name == "get_paginator":
                return self._paginator
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            queue = self._queued.get(name)
            if queue:
                self.failed[name] += 1
                raise queue.pop(0)
            return target(*args, **kwargs)

        return call

    def _paginator(self, operation: str) -> Any:
        flaky = self

        class Paginator:
            def paginate(self, **kwargs: Any) -> Iterable[Any]:
                flaky.calls[operation] += 1
                queue = flaky._queued.get(operation)
                if queue:
                    flaky.failed[operation] += 1
                    raise queue.pop(0)
                return flaky._inner.get_paginator(operation).paginate(**kwargs)

        return Paginator()


class Tripwire:
    """Wraps a collaborator of a function's service and kills the function at one chosen step:
    `Tripwire(ledger, "record_submitted", when="after")` lets the write happen, then raises
    `Killed` as if the instance had stopped right after it. It fires `times` times, then passes
    every call through. `skip` lets that many calls of the method through before it arms."""

    def __init__(
        self, inner: Any, method: str, *, when: str = "before", times: int = 1, skip: int = 0
    ) -> None:
        if when not in ("before", "after"):
            raise ValueError("when is 'before' or 'after'")
        self._inner = inner
        self._method = method
        self._when = when
        self.remaining = times
        self.skip = skip
        self.fired = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if name != self._method:
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.skip > 0:
                self.skip -= 1
                return target(*args, **kwargs)
            if self.remaining > 0 and self._when == "before":
                self.remaining -= 1
                self.fired += 1
                raise Killed(f"stopped before {self._method}")
            result = target(*args, **kwargs)
            if self.remaining > 0:
                self.remaining -= 1
                self.fired += 1
                raise Killed(f"stopped after {self._method}")
            return result

        return call


# -- S3 events ---------------------------------------------------------------------------------


def s3_event(
    bucket: str,
    key: str,
    *,
    version_id: str | None,
    sequencer: str | None = None,
    size: int = 20,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An S3 `Object Created` event as EventBridge delivers it to the submit function; each call
    gets its own ETag, as distinct uploads would."""
    return object_created_event(
        bucket,
        key,
        size=size,
        version_id=version_id,
        sequencer=sequencer,
        etag=uuid.uuid4().hex,
        event_id=event_id,
    )


# -- the submit world ----------------------------------------------------------------------------


@dataclass
class SubmitWorld:
    """moto S3 + ledger table + the local Cromwell server, and the submit function over them."""

    s3: Any
    ddb: Any
    server: CromwellTestServer
    sleeps: list[float] = field(default_factory=list)
    delivered: int = 0

    # -- uploads -------------------------------------------------------------------------------

    def put(self, key: str, body: bytes) -> dict[str, Any]:
        """Upload one object; the event S3 would emit for it."""
        answer = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return s3_event(BUCKET, key, version_id=answer.get("VersionId"), size=len(body))

    def drop_run(self, folder: str, *, inputs: int = 1) -> list[dict[str, Any]]:
        """A run folder with the WDL first, then `inputs` inputs files; their events."""
        self.put(f"{folder}/hello.wdl", HELLO_WDL.encode())
        names = ["inputs.json"] if inputs == 1 else [f"sample{i:03d}.inputs.json" for i in range(inputs)]
        return [self.put(f"{folder}/{name}", json.dumps({"hello.who": name}).encode()) for name in names]

    # -- the function --------------------------------------------------------------------------

    def cromwell_client(
        self, *, max_attempts: int = 3, timeout: tuple[float, float] = (1.0, 2.0)
    ) -> CromwellClient:
        return CromwellClient(
            self.server.url, timeout=timeout, max_attempts=max_attempts, sleep=self.sleeps.append
        )

    def service(
        self,
        *,
        s3: Any = None,
        ddb: Any = None,
        cromwell: CromwellClient | None = None,
        wrap: Mapping[str, Callable[[Any], Any]] | None = None,
        callback_uri: str | None = None,
    ) -> SubmitService:
        """The production wiring (`submit.composition.compose`, as the handler's default), with
        injectable clients; `wrap` maps a collaborator's name (folders, cromwell, ledger,
        receipts, objects) to a function that wraps it (a `Tripwire`, say)."""
        return compose(
            environ={**SUBMIT_ENV, "CROMWELL_URL": self.server.url},
            s3=s3 or self.s3,
            dynamodb=ddb or self.ddb,
            cromwell=cromwell or self.cromwell_client(),
            callback_uri=callback_uri,
            wrap=wrap,
            sleep=lambda _s: None,
        )

    def invoke(self, event: Mapping[str, Any], service: SubmitService) -> dict[str, Any]:
        self.delivered += 1
        result: dict[str, Any] = submit_handler.lambda_handler(dict(event), Ctx(), service=service)
        return result

    def invoke_until_done(
        self, event: Mapping[str, Any], services: Iterable[SubmitService]
    ) -> tuple[dict[str, Any], list[BaseException]]:
        """Lambda's asynchronous retries: invoke with each service in turn until one succeeds."""
        errors: list[BaseException] = []
        for service in services:
            try:
                return self.invoke(event, service), errors
            except Exception as exc:
                errors.append(exc)
        raise AssertionError(f"never succeeded: {errors}")

    # -- observation ---------------------------------------------------------------------------

    def receipt(self, inputs_key: str) -> dict[str, Any] | None:
        try:
            body = self.s3.get_object(Bucket=BUCKET, Key=receipt_key(inputs_key))["Body"].read()
        except ClientError:
            return None
        document: dict[str, Any] = json.loads(body)
        return document

    def items(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": TABLE}
        while True:
            page = self.ddb.scan(**kwargs)
            out.extend(decode_image(i) for i in page["Items"])
            if not page.get("LastEvaluatedKey"):
                return sorted(out, key=lambda i: (i[s.PK], i[s.SK]))
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def runs(self) -> dict[str, dict[str, Any]]:
        return {i["workflow_id"]: i for i in self.items() if i[s.SK] == s.RUN_SK}

    def submissions(self) -> Counter[str]:
        """Workflows Cromwell created, by requested id (a count above 1 would be a duplicate)."""
        return Counter(str(sub.requested_workflow_id) for sub in self.server.backend.submissions)

    def check(self, inputs_keys: Iterable[str]) -> dict[str, int]:
        """The invariants after any scenario; returns the counts it saw.

        * one run item per inputs file, Submitted or Rejected, and one outbox event of that kind;
        * Cromwell holds exactly one workflow per Submitted run and none for any other;
        * the receipt beside each inputs file says the same as the ledger.
        """
        keys = list(dict.fromkeys(inputs_keys))
        items = self.items()
        runs = {i["workflow_id"]: i for i in items if i[s.SK] == s.RUN_SK}
        by_key = {run["inputs_key"]: run for run in runs.values()}
        assert sorted(by_key) == sorted(keys), "one run item per inputs file"
        assert len(runs) == len(keys), "no run item without its inputs file"
        events = Counter((i["workflow_id"], i["kind"]) for i in items if i.get(s.TYPE) == s.ITEM_EVENT)
        submitted = self.submissions()
        assert all(n == 1 for n in submitted.values()), f"duplicate submissions: {submitted}"
        for wid, run in runs.items():
            kind = "SUBMITTED" if run["status"] == "Submitted" else "REJECTED"
            assert run["status"] in ("Submitted", "Rejected"), run["status"]
            assert events[(wid, kind)] == 1, f"{wid}: one {kind} outbox event"
            assert sum(n for (w, _k), n in events.items() if w == wid) == 1, f"{wid}: no other event"
            assert submitted[wid] == (1 if run["status"] == "Submitted" else 0)
            receipt = self.receipt(run["inputs_key"])
            assert receipt is not None, f"no receipt for {run['inputs_key']}"
            assert receipt["status"] == run["status"]
            assert receipt["workflow_id"] == wid
        assert set(submitted) <= set(runs), "a Cromwell workflow the ledger does not know"
        return {
            "ledger_items": len(items),
            "runs": len(runs),
            "outbox_events": sum(events.values()),
            "submissions": sum(submitted.values()),
        }
