"""Runs and tasks as the ledger's typed views hold them, built in memory for tests and benchmarks:
a scatter with a failed shard and a retried one, queue waits and run times of varied lengths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from courier.ledger.records import FailureEntry, RunView, TaskView
from courier.models import RunStatus, TaskStatus

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def scatter_tasks(
    shards: int = 24, *, failed_shard: int | None = 7, start: datetime = T0, merge_running: bool = True
) -> list[TaskView]:
    """`rnaseq.prepare`, `shards` x `rnaseq.align` (one failed, one retried), `rnaseq.merge`."""
    tasks = [
        _task("job-prep", "rnaseq.prepare", -1, start, wait=20, ran=90, status=TaskStatus.SUCCEEDED),
    ]
    align_start = start + timedelta(seconds=115)
    for shard in range(shards):
        wait = 15 + (shard * 37) % 160
        ran = 240 + (shard * 53) % 420
        status = TaskStatus.FAILED if shard == failed_shard else TaskStatus.SUCCEEDED
        tasks.append(
            _task(
                f"job-align-{shard:05d}",
                "rnaseq.align",
                shard,
                align_start,
                wait=wait,
                ran=ran,
                status=status,
                exit_code=137 if status is TaskStatus.FAILED else 0,
                reason="OutOfMemoryError: Container killed due to memory usage"
                if status is TaskStatus.FAILED
                else None,
                queue="arn:aws:batch:us-east-1:123456789012:job-queue/genomics-spot"
                if shard % 2
                else "genomics-ondemand",
            )
        )
        if shard == 3:
            tasks.append(
                _task(
                    f"job-align-{shard:05d}-b",
                    "rnaseq.align",
                    shard,
                    align_start + timedelta(seconds=wait + ran + 30),
                    wait=40,
                    ran=200,
                    status=TaskStatus.SUCCEEDED,
                    attempt=2,
                )
            )
    tasks.append(
        _task(
            "job-merge",
            "rnaseq.merge",
            -1,
            align_start + timedelta(seconds=900),
            wait=30,
            ran=None if merge_running else 120,
            status=TaskStatus.RUNNING if merge_running else TaskStatus.SUCCEEDED,
        )
    )
    return tasks


def _task(
    job_id: str,
    call: str,
    shard: int,
    created: datetime,
    *,
    wait: float,
    ran: float | None,
    status: TaskStatus,
    exit_code: int | None = None,
    reason: str | None = None,
    attempt: int = 1,
    queue: str = "genomics-spot",
) -> TaskView:
    started = created + timedelta(seconds=wait)
    stopped = started + timedelta(seconds=ran) if ran is not None else None
    return TaskView(
        job_id=job_id,
        call=call,
        shard=shard,
        attempt=attempt,
        status=status,
        status_reason=reason or ("Essential container in task exited" if stopped else None),
        exit_code=exit_code if exit_code is not None else (0 if stopped else None),
        created_at=created,
        started_at=started,
        stopped_at=stopped,
        vcpus=4,
        memory_mib=8192,
        queue=queue,
        log_group="/aws/batch/job",
        log_stream=f"rnaseq/default/{job_id}",
    )


def sample_run(status: RunStatus = RunStatus.FAILED, **changes: object) -> RunView:
    fields: dict[str, object] = {
        "workflow_id": "5b0c8f0e-2f7d-5a51-9d8e-0f6c1b6f3a2e",
        "workflow_name": "rnaseq",
        "status": status,
        "origin": "dropped",
        "source_bucket": "courier-runs",
        "inputs_key": "runs/rnaseq/sampleA.inputs.json",
        "run_folder": "runs/rnaseq/",
        "requester": "arn:aws:sts::123456789012:assumed-role/Scientist/ada",
        "submitted_at": T0 - timedelta(seconds=20),
        "started_at": T0,
        "ended_at": T0 + timedelta(minutes=40) if status.terminal else None,
        "failures": (
            FailureEntry(
                call="rnaseq.align",
                shard=7,
                attempt=1,
                return_code=137,
                message="Task rnaseq.align:7:1 failed. The job was stopped before the command finished.",
            ),
        ),
        "outputs": {"rnaseq.counts": "s3://results/rnaseq/sampleA/counts.tsv", "rnaseq.n": 24},
    }
    fields.update(changes)
    return RunView(**fields)  # type: ignore[arg-type]
