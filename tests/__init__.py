"""Cromwell Courier test suites."""
