"""Monitor: follows the AWS Batch jobs of Cromwell runs, records each task and run transition in
the ledger, and writes the terminal status of a run exactly once (callback, reconciler, last
Batch event)."""
