"""The submit function put together, in one place: settings, clients, adapters, service.

`compose()` is what the Lambda handler calls once per container (settings from the environment,
clients from `courier.clients`); the local stack and the test harness call it with their own
environment and clients (moto, the local Cromwell server), and may wrap any collaborator (a
fault-injecting `Tripwire`, say) through `wrap`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from courier import clients
from courier.ledger.folders import FolderWindows
from courier.ledger.pipeline import PipelineLedger
from courier.ledger.runs import RunLedger, utcnow
from courier.secrets import SecretReader
from courier.settings import load_settings
from courier.storage import ObjectStore
from submit.adapters import CromwellSubmitter, S3Folders, S3InputChecker, S3Receipts
from submit.folder_batch import FolderBatches
from submit.next_step import PipelinePlace
from submit.plan import Limits
from submit.service import SubmitOptions, SubmitService
from submit.settings import SubmitSettings

if TYPE_CHECKING:
    from courier.cromwell import CromwellClient


def compose(
    settings: SubmitSettings | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    s3: Any = None,
    dynamodb: Any = None,
    cromwell: CromwellClient | None = None,
    secrets: SecretReader | None = None,
    callback_uri: str | None = None,
    wrap: Mapping[str, Callable[[Any], Any]] | None = None,
    **service_options: Any,
) -> SubmitService:
    """The submit service wired to its adapters.

    `settings` default: loaded from `environ` (default: the process environment). Clients not
    given are the container's (`courier.clients`), the Cromwell one verifying TLS against the
    configured CA bundle. `callback_uri` default: the callback URL with its token, when the
    settings name both. `wrap` maps a collaborator's name (folders, cromwell, ledger, receipts,
    objects, folder_batches, pipeline) to a function wrapping it; `service_options` (clock, sleep,
    monotonic) go to the service.
    """
    settings = settings or load_settings(SubmitSettings, environ)
    store = ObjectStore(s3 if s3 is not None else clients.s3())
    ledger_client = dynamodb if dynamodb is not None else clients.dynamodb()
    parts: dict[str, Any] = {
        "folders": S3Folders(store),
        "cromwell": CromwellSubmitter(
            cromwell
            or clients.cromwell(
                settings.cromwell_url,
                settings.cromwell_ca_bundle,
                max_attempts=settings.cromwell_max_attempts,
                auth_secret=settings.cromwell_auth_secret,
                secrets=secrets,
            )
        ),
        "ledger": RunLedger(settings.table_name, ledger_client, retention_days=settings.retention_days),
        "receipts": S3Receipts(store),
        "objects": S3InputChecker(store),
        "folder_batches": folder_batches(settings, ledger_client, service_options.get("clock")),
        "pipeline": PipelinePlace(
            PipelineLedger(settings.table_name, ledger_client, retention_days=settings.retention_days),
            max_depth=settings.max_chain_depth,
        ),
    }
    for name, wrapper in (wrap or {}).items():
        parts[name] = wrapper(parts[name])
    return SubmitService(
        **parts,
        limits=Limits(
            max_file_bytes=settings.max_file_bytes,
            max_total_bytes=10 * settings.max_file_bytes,
            max_s3_checks=settings.max_s3_checks,
        ),
        options=SubmitOptions(
            check_s3_inputs=settings.check_s3_inputs,
            wdl_wait_seconds=settings.wdl_wait_seconds,
            poll_seconds=settings.poll_seconds,
            callback_uri=callback_uri or workflow_callback_uri(settings, secrets),
        ),
        **service_options,
    )


def workflow_callback_uri(settings: SubmitSettings, secrets: SecretReader | None = None) -> str | None:
    """`<callback URL>?token=<secret>` for the workflow option `workflow_callback_uri`, or None
    when the callback is not configured. The token is read through `secrets` (default: the
    container's reader)."""
    if not settings.callback_url or not settings.callback_token_secret:
        return None
    token = (secrets or clients.secret_reader()).require(settings.token_reference)
    separator = "&" if "?" in settings.callback_url else "?"
    return f"{settings.callback_url}{separator}token={token.reveal()}"


def folder_batches(
    settings: SubmitSettings, dynamodb: Any, clock: Callable[[], datetime] | None = None
) -> FolderBatches | None:
    """The folder windows of `BATCH_WINDOW_SECONDS` (None when it is 0: every file alone)."""
    if settings.batch_window_seconds <= 0:
        return None
    return FolderBatches(
        FolderWindows(settings.table_name, dynamodb, retention_days=settings.retention_days),
        timedelta(seconds=settings.batch_window_seconds),
        clock or utcnow,
    )
