"""`CromwellTestServer`: the local Cromwell-compatible REST server on 127.0.0.1, in a thread.

A test and local-stack tool, not deployed. Usable as a context manager or a pytest fixture:

    with CromwellTestServer() as server:
        client = CromwellClient(server.url)
        server.backend.set_status(workflow_id, "Running")
        server.fail_next(2, status=503)
"""

from __future__ import annotations

import threading
from functools import lru_cache
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from local.cromwell_api.app import LOCAL_VERSION, CromwellApp, Fault, LoggedRequest
from local.cromwell_api.auth import RequireAuth, RequiredAuth
from local.cromwell_api.backend import Backend, InMemoryBackend
from local.cromwell_api.spec import CromwellSpec


@lru_cache(maxsize=1)
def shared_spec() -> CromwellSpec:
    return CromwellSpec()


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        return


class CromwellTestServer:
    """Serves `CromwellApp` over HTTP on `host` (loopback) and a free port.

    `stop()` closes the listening socket, so clients get "connection refused" until `start()`
    listens again on the same port (`url` stays valid).
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        version: str = LOCAL_VERSION,
        spec: CromwellSpec | None = None,
        auth: RequiredAuth | None = None,
    ) -> None:
        self.backend: Any = backend if backend is not None else InMemoryBackend()
        self.app = CromwellApp(self.backend, spec or shared_spec(), version=version)
        #: With `auth`, a proxy's credential check in front of the app (`local.cromwell_api.auth`).
        self.auth = RequireAuth(self.app, auth) if auth is not None else None
        self.host = host
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the server has not been started")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> CromwellTestServer:
        if self._server is not None:
            return self
        self.app.stopping.clear()
        served = self.auth if self.auth is not None else self.app
        server = make_server(self.host, self.port, served, threaded=True, request_handler=_QuietHandler)
        self.port = server.server_port
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="cromwell-test-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.app.stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> CromwellTestServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- faults ------------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        operation: str | None = None,
        message: str = "Cromwell is unavailable (injected fault)",
    ) -> None:
        """Answer the next `n` requests (of `operation`, an operationId such as `submit`, or any)
        with `status` and a Cromwell error body, without doing anything else."""
        self.app.faults.add(Fault("fail", n, operation, status=status, message=message))

    def delay_next(self, n: int, seconds: float, *, operation: str | None = None) -> None:
        """Wait `seconds` before handling each of the next `n` requests (to provoke timeouts).
        The request is still handled after the wait, as a slow Cromwell would."""
        self.app.faults.add(Fault("delay", n, operation, seconds=seconds))

    def drop_next_response(self, n: int = 1, *, operation: str | None = "submit") -> None:
        """Handle the next `n` requests fully (a submit creates the workflow), then close the
        connection instead of answering: the client sees a connection error."""
        self.app.faults.add(Fault("drop", n, operation))

    def clear_faults(self) -> None:
        self.app.faults.clear()

    @property
    def healthy(self) -> bool:
        return self.app.healthy

    @healthy.setter
    def healthy(self, value: bool) -> None:
        self.app.healthy = value

    # -- observation -------------------------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request so far: method, path, operation, query, part names, status, answer."""
        return list(self.app.requests)

    def calls(self, operation: str) -> int:
        """How many requests reached `operation` (an operationId, or `unmatched`)."""
        return self.app.counts[operation]

    def reset_log(self) -> None:
        self.app.requests.clear()
        self.app.counts.clear()
