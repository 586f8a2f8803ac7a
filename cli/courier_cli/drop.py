"""Dropping a local run folder into the runs bucket, in the order the submit rules need.

WDL files (the main workflow and everything it imports) first, then `options.json` and
`labels.json`, then any other file, and the inputs files last: an inputs file starts a run, and
the run reads the rest of the folder when it starts. Then each inputs file's receipt is awaited.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

from botocore.exceptions import ClientError

from courier_cli.errors import ConsoleError
from courier_cli.lookup import RECEIPT_SUFFIX

INPUTS_NAME: Final = re.compile(r"^(.+\.)?inputs\.json$")
_SETTINGS: Final = ("options.json", "labels.json")
_SKIPPED_DIRS: Final = frozenset({".git", "__pycache__", ".venv", "node_modules"})


@dataclass(frozen=True, slots=True)
class Upload:
    path: Path
    key: str
    size: int
    is_inputs: bool = False


@dataclass(frozen=True, slots=True)
class DropPlan:
    folder: Path
    prefix: str
    uploads: tuple[Upload, ...]

    @property
    def inputs(self) -> tuple[Upload, ...]:
        return tuple(u for u in self.uploads if u.is_inputs)

    @property
    def total_bytes(self) -> int:
        return sum(u.size for u in self.uploads)


@dataclass(slots=True)
class Outcome:
    """What the receipt of one inputs file said (or that none came)."""

    inputs_key: str
    status: str
    workflow_id: str | None = None
    workflow_name: str | None = None
    reasons: list[str] = field(default_factory=list)
    message: str | None = None

    @property
    def refused(self) -> bool:
        """Rejected. (`Waiting`: Cromwell was unreachable and the run is submitted later.)"""
        return self.status == "Rejected"

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs_key": self.inputs_key,
            "status": self.status,
            "workflow_id": self.workflow_id,
            "workflow_name": self.workflow_name,
            "reasons": list(self.reasons),
            "message": self.message,
        }


def _rank(relative: PurePosixPath) -> int:
    name = relative.name
    if name.endswith(".wdl"):
        return 0
    if name in _SETTINGS and len(relative.parts) == 1:
        return 1
    if INPUTS_NAME.match(name):
        return 3
    return 2


def plan_drop(folder: Path, to: str | None) -> DropPlan:
    """The uploads of `folder` to the `to` prefix (default `runs/<folder name>/`), in order."""
    if not folder.is_dir():
        raise ConsoleError(f"{folder} is not a folder: give the run folder (WDL, inputs files) to drop")
    prefix = (to or f"runs/{folder.resolve().name}").strip().lstrip("/")
    if prefix.startswith("s3://"):
        raise ConsoleError("--to takes a key prefix in the runs bucket (runs/NAME/), not an s3:// URL")
    if not prefix.endswith("/"):
        prefix += "/"
    if any(part in ("", ".", "..") for part in prefix.rstrip("/").split("/")):
        raise ConsoleError(f"--to {to!r} has an empty, '.' or '..' segment: name a folder like runs/NAME/")
    found: list[tuple[int, str, Upload]] = []
    for path in sorted(folder.rglob("*")):
        relative = PurePosixPath(path.relative_to(folder).as_posix())
        if not path.is_file() or any(p in _SKIPPED_DIRS or p.startswith(".") for p in relative.parts):
            continue
        if relative.name.endswith(RECEIPT_SUFFIX) or relative.name.endswith(".report.html"):
            continue  # what Courier wrote, not the user's
        rank = _rank(relative)
        upload = Upload(path, prefix + relative.as_posix(), path.stat().st_size, is_inputs=rank == 3)
        found.append((rank, upload.key, upload))
    uploads = tuple(u for _, _, u in sorted(found, key=lambda f: (f[0], f[1])))
    if not any(u.key.endswith(".wdl") for u in uploads):
        raise ConsoleError(f"{folder} holds no .wdl file: a run folder needs its workflow beside the inputs")
    if not any(u.is_inputs for u in uploads):
        raise ConsoleError(
            f"{folder} holds no inputs file: name it inputs.json or <sample>.inputs.json (one run each)"
        )
    return DropPlan(folder, prefix, uploads)


class Dropper:
    """Uploads a plan and waits for the receipts. The S3 client is injected."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.clock = clock
        self.sleep = sleep

    def receipt_etags(self, plan: DropPlan) -> dict[str, str | None]:
        """The ETag of each inputs file's receipt before the drop (None: no receipt yet), so that
        an earlier drop's receipt is not taken for this one's."""
        return {u.key: self.receipt_etag(u.key) for u in plan.inputs}

    def receipt_etag(self, key: str) -> str | None:
        """The ETag of the receipt of `key` (None: no receipt yet)."""
        try:
            return str(self.s3.head_object(Bucket=self.bucket, Key=key + RECEIPT_SUFFIX)["ETag"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def upload(self, item: Upload, on_bytes: Callable[[int], None]) -> None:
        self.s3.upload_file(str(item.path), self.bucket, item.key, Callback=on_bytes)

    def wait(
        self, before: Mapping[str, str | None], *, timeout: float, on_outcome: Callable[[Outcome], None]
    ) -> list[Outcome]:
        """Wait until every inputs file has a new receipt (or `timeout` seconds passed)."""
        import json  # noqa: PLC0415

        pending = dict(before)
        outcomes: dict[str, Outcome] = {}
        deadline = self.clock() + timeout
        delay = 0.25
        while pending:
            for key, etag in list(pending.items()):
                current = self.receipt_etag(key)
                if current is None or current == etag:
                    continue
                body = self.s3.get_object(Bucket=self.bucket, Key=key + RECEIPT_SUFFIX)["Body"].read()
                try:
                    receipt = json.loads(body)
                except ValueError:
                    continue  # caught mid-write by an emulator: read it again
                outcome = Outcome(
                    inputs_key=key,
                    status=str(receipt.get("status") or "Unknown"),
                    workflow_id=receipt.get("workflow_id"),
                    workflow_name=receipt.get("workflow_name"),
                    reasons=[str(r) for r in receipt.get("reasons") or []],
                    message=receipt.get("message"),
                )
                outcomes[key] = outcome
                del pending[key]
                on_outcome(outcome)
            if not pending:
                break
            if self.clock() >= deadline:
                raise ConsoleError(
                    f"no receipt after {timeout:.0f}s for {', '.join(sorted(pending))}: is Courier's submit"
                    f" function deployed on s3://{self.bucket}? (`courier runs` shows it later)"
                )
            self.sleep(delay)
            delay = min(delay * 1.5, 2.0)
        return [outcomes[k] for k in before]
