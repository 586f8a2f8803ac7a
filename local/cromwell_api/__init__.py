"""A Cromwell-compatible REST server for tests and the local stack. Not deployed.

It checks every request against Cromwell's published Swagger spec (`cromwell-openapi.yaml`,
vendored unchanged) and Cromwell's own rules, and answers from a pluggable `Backend`
(`InMemoryBackend` by default). Its engine version says `92-courier-local`.
"""

from local.cromwell_api.app import LOCAL_VERSION, CromwellApp, LoggedRequest
from local.cromwell_api.backend import Backend, IdInUse, InMemoryBackend, NotOnHold, Workflow
from local.cromwell_api.rules import Rejection, Submission
from local.cromwell_api.server import CromwellTestServer, shared_spec
from local.cromwell_api.spec import ERRATA, SPEC_PATH, CromwellSpec

__all__ = [
    "ERRATA",
    "LOCAL_VERSION",
    "SPEC_PATH",
    "Backend",
    "CromwellApp",
    "CromwellSpec",
    "CromwellTestServer",
    "IdInUse",
    "InMemoryBackend",
    "LoggedRequest",
    "NotOnHold",
    "Rejection",
    "Submission",
    "Workflow",
    "shared_spec",
]
