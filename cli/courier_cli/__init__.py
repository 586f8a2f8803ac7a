"""The `courier` command: the runs console of a Cromwell Courier deployment (docs/cli.md)."""
