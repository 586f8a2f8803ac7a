"""The local stack: template.yaml's resources in moto, the functions' handlers invoked in this
process by a router that plays Lambda's event sources, the local engine running the WDL, and
loopback receivers for the messages. A local emulation for demos and end-to-end tests; never
deployed."""

from local.stack.receivers import Email, SlackPost
from local.stack.stack import LocalStack, LocalStackOptions
from local.stack.template import TemplateError
from local.stack.timeline import Entry, Timeline

__all__ = ["Email", "Entry", "LocalStack", "LocalStackOptions", "SlackPost", "TemplateError", "Timeline"]
