"""A Cromwell-compatible engine that really runs WDL (with miniwdl) as local processes. Not deployed.

`LocalEngine` implements `local.cromwell_api.backend.Backend`; serve it with
`CromwellTestServer(backend=engine)`. Each task attempt is reported through `emit` as the AWS Batch
"Batch Job State Change" events Cromwell on AWS Batch would cause, and its script, stdout, stderr and
rc are written to S3 where Cromwell on AWS would put them. With `EngineConfig.call_caching` (Cromwell's
`call-caching.enabled`), a call whose task, inputs and docker image match an earlier successful call
copies its results instead of running (`local.engine.callcache`): no Batch job, and a cache hit in
the metadata.
"""

from local.engine.engine import EngineConfig, LocalEngine

__all__ = ["EngineConfig", "LocalEngine"]
