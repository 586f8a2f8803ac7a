"""Folder batches: the inputs files dropped into one folder within the batch window
(`BATCH_WINDOW_SECONDS`) form one batch, told by one digest when its last run ends; a window that
took one file is no batch to the person who dropped it (its run's own end message tells it).

Which window a file joins is decided by the upload's own time (the S3 event's), not by when the
event is handled, and recorded with the join: a redelivered event gets the same answer.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from courier.ledger.records import parse_time
from submit.service import Membership
from submit.upload import INPUTS_NAME, INPUTS_SUFFIX, Upload


class FolderWindowBook(Protocol):
    """`courier.ledger.folders.FolderWindows`."""

    def assign(
        self, bucket: str, folder: str, workflow_id: str, *, at: datetime, window: timedelta
    ) -> str | None: ...


def sample_name(upload: Upload) -> str:
    """The sample a file names in its batch: `sampleA.inputs.json` -> `sampleA`; a folder's
    `inputs.json` is named by its folder."""
    if upload.name == INPUTS_NAME:
        return posixpath.basename(upload.folder.rstrip("/")) or INPUTS_NAME
    return upload.name.removesuffix(INPUTS_SUFFIX)


class FolderBatches:
    """The batch an inputs file joins (`Membership`), or None: folder batches off, or it runs alone."""

    def __init__(self, windows: FolderWindowBook, window: timedelta, clock: Callable[[], datetime]) -> None:
        self.windows = windows
        self.window = window
        self.clock = clock

    def membership(self, upload: Upload, workflow_id: str) -> Membership | None:
        if self.window <= timedelta(0):
            return None
        at = parse_time(upload.event_time) or self.clock()
        batch_id = self.windows.assign(upload.bucket, upload.folder, workflow_id, at=at, window=self.window)
        return Membership(batch_id, sample_name(upload)) if batch_id else None
