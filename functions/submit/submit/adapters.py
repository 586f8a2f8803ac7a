"""Adapters of the submit function: S3 (folder, receipts, input checks) and Cromwell."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from courier.errors import CourierError, WorkflowIdInUse
from courier.storage import ObjectMissing, ObjectStore, ObjectTooLarge
from submit.plan import Limits, RunFolder, SubmissionPlan
from submit.receipt import Receipt
from submit.upload import Upload

if TYPE_CHECKING:
    from courier.cromwell import CromwellClient

#: Files of a run folder that submit reads (besides the inputs file that triggered it).
_ROOT_FILES = ("options.json", "labels.json")


class S3Folders:
    """Reads what a run needs from the folder the inputs file landed in: every `.wdl` file below
    it, `options.json` and `labels.json` beside it, and the inputs file at its exact version.
    Files above the size limit are not read; their sizes are reported so the refusal names them."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def read_folder(self, upload: Upload, limits: Limits) -> RunFolder:
        listing = self.store.list_folder(
            upload.bucket, upload.folder, max_keys=max(1000, limits.max_wdl_files * 5)
        )
        files: dict[str, bytes] = {}
        oversized: dict[str, int] = {}
        wdl = [rel for rel in sorted(listing.sizes) if rel.endswith(".wdl")]
        # one more WDL than the limit is enough for the plan to say the limit is exceeded
        wanted = [rel for rel in _ROOT_FILES if rel in listing.sizes] + wdl[: limits.max_wdl_files + 1]
        total = 0
        for rel in wanted:
            size = listing.sizes[rel]
            if size > limits.max_file_bytes or total + size > limits.max_total_bytes:
                oversized[rel] = size
                continue
            try:
                files[rel] = self.store.read(
                    upload.bucket, upload.folder + rel, max_bytes=limits.max_file_bytes
                )
            except ObjectMissing:
                continue  # deleted between listing and reading
            except ObjectTooLarge as exc:
                oversized[rel] = exc.size
                continue
            total += len(files[rel])
        extra_wdl = max(0, len(wdl) - (limits.max_wdl_files + 1))
        inputs_name = upload.key[len(upload.folder) :]
        try:
            files[inputs_name] = self.store.read(
                upload.bucket, upload.key, max_bytes=limits.max_file_bytes, version_id=upload.version_id
            )
        except ObjectTooLarge as exc:
            oversized[inputs_name] = exc.size
        except ObjectMissing:
            pass  # deleted, or this version replaced, before it could be read: the plan says so
        return RunFolder(
            prefix=upload.folder,
            files=files,
            inputs_name=inputs_name,
            oversized=oversized,
            skipped_wdl=extra_wdl,
        )


class S3Receipts:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def write(self, bucket: str, key: str, receipt: Receipt) -> None:
        self.store.put_json(bucket, key, receipt.to_document())


class S3InputChecker:
    """HeadObject on each `s3://` input, a bounded number per run (the plan bounds the list)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def missing(self, uris: Sequence[str]) -> list[str]:
        problems = []
        for uri in uris:
            parts = urlsplit(uri)
            bucket, key = parts.netloc, parts.path.lstrip("/")
            try:
                if not self.store.exists(bucket, key):
                    problems.append(f"input file {uri} does not exist")
            except CourierError as exc:
                problems.append(f"input file {uri} cannot be checked: {exc}")
        return problems


class CromwellSubmitter:
    def __init__(self, client: CromwellClient) -> None:
        self.client = client

    def submit(self, plan: SubmissionPlan) -> str:
        from courier.cromwell import SubmitRequest  # noqa: PLC0415 - requests loads with the client, not at import

        try:
            result = self.client.submit(
                SubmitRequest(
                    workflow_source=plan.workflow_source,
                    workflow_inputs=plan.workflow_inputs,
                    requested_workflow_id=plan.workflow_id,
                    workflow_dependencies=plan.workflow_dependencies,
                    workflow_options=plan.workflow_options,
                    labels=plan.labels,
                    workflow_type=plan.workflow_type,
                    workflow_type_version=plan.workflow_type_version,
                )
            )
        except WorkflowIdInUse:
            return "Submitted"  # an earlier attempt created it; its answer was lost
        return result.status
