"""The notify function: turns ledger outbox events into e-mail (SNS) and Slack messages."""
