"""Shared code of Cromwell Courier: settings, observability, typed errors and the adapters
(Cromwell REST, the DynamoDB run ledger, S3) that the submit, monitor and notify functions use."""

__version__ = "0.1.0"
