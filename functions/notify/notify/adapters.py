"""Adapters to the outside: SNS, Slack (slack-sdk), S3 (stderr tails), Secrets Manager.
Clients are injected, so tests pass moto clients, a local HTTP receiver or fakes."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from courier.errors import ConfigurationError, CourierError
from courier.links import split_s3_uri
from notify.render_email import EmailMessage

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

    # slack-sdk is imported where a Slack client is built: runs without Slack never load it.
    from slack_sdk import WebClient
    from slack_sdk.http_retry.handler import RetryHandler
    from slack_sdk.webhook import WebhookClient


class DeliveryError(CourierError):
    """A channel did not accept a message; the record is retried."""

    def __init__(self, channel: str, detail: str) -> None:
        self.channel = channel
        self.detail = detail
        super().__init__(f"{channel}: {detail}")


# -- SNS ------------------------------------------------------------------------------------------


class SnsPublisher:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self.client = client
        self.topic_arn = topic_arn

    def publish(self, message: EmailMessage) -> str:
        attributes = {
            key: {"DataType": "String", "StringValue": value}
            for key, value in message.attributes.items()
            if value
        }
        try:
            resp = self.client.publish(
                TopicArn=self.topic_arn,
                Subject=message.subject,
                Message=message.sns_message(),
                MessageStructure="json",
                MessageAttributes=attributes,  # type: ignore[arg-type]
            )
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryError("sns", str(exc)) from exc
        return str(resp.get("MessageId", ""))


# -- Slack ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlackConfig:
    """The Slack set-up from Secrets Manager. The repr never shows the secrets."""

    webhook_url: str = field(default="", repr=False)
    bot_token: str = field(default="", repr=False)
    channel: str = ""

    @property
    def threads(self) -> bool:
        return bool(self.bot_token)


def parse_slack_secret(value: str) -> SlackConfig:
    """Accepts the webhook URL itself, `{"webhook_url": ...}` or `{"bot_token": ..., "channel": ...}`."""
    text = value.strip()
    if text.startswith("https://"):
        return SlackConfig(webhook_url=text)
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigurationError(
            "NotifySettings", ["SLACK_SECRET_ARN: secret is neither a URL nor JSON"]
        ) from None
    if not isinstance(data, dict):
        raise ConfigurationError("NotifySettings", ["SLACK_SECRET_ARN: secret JSON must be an object"])
    if data.get("bot_token"):
        return SlackConfig(bot_token=str(data["bot_token"]), channel=str(data.get("channel") or ""))
    if data.get("webhook_url"):
        return SlackConfig(webhook_url=str(data["webhook_url"]))
    raise ConfigurationError(
        "NotifySettings", ["SLACK_SECRET_ARN: secret has neither webhook_url nor bot_token"]
    )


def retry_handlers(*, max_retries: int = 3, backoff: float = 0.5) -> list[RetryHandler]:
    from slack_sdk.http_retry.builtin_handlers import (  # noqa: PLC0415 - lazy: only with Slack
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )
    from slack_sdk.http_retry.builtin_interval_calculators import (  # noqa: PLC0415
        BackoffRetryIntervalCalculator,
    )

    interval = BackoffRetryIntervalCalculator(backoff_factor=backoff)
    return [
        ConnectionErrorRetryHandler(max_retry_count=max_retries, interval_calculator=interval),
        RateLimitErrorRetryHandler(max_retry_count=max_retries),
        ServerErrorRetryHandler(max_retry_count=max_retries, interval_calculator=interval),
    ]


@dataclass(frozen=True, slots=True)
class Posted:
    channel: str
    ts: str


class SlackPoster(Protocol):
    threads: bool

    def post(
        self, payload: dict[str, Any], *, channel: str | None, thread_ts: str | None, broadcast: bool
    ) -> Posted: ...


class WebhookPoster:
    """Incoming webhook: the channel is the webhook's; no threads."""

    threads = False

    def __init__(self, client: WebhookClient) -> None:
        self.client = client

    def post(
        self, payload: dict[str, Any], *, channel: str | None, thread_ts: str | None, broadcast: bool
    ) -> Posted:
        try:
            resp = self.client.send_dict(payload)
        except Exception as exc:  # connection errors after the SDK's retries
            raise DeliveryError("slack", f"webhook unreachable: {type(exc).__name__}") from exc
        if resp.status_code != 200:
            raise DeliveryError("slack", f"webhook answered HTTP {resp.status_code}: {str(resp.body)[:200]}")
        return Posted(channel="", ts="")


class BotPoster:
    """Bot token + chat.postMessage: messages of one run form a thread."""

    threads = True

    def __init__(self, client: WebClient, default_channel: str) -> None:
        self.client = client
        self.default_channel = default_channel

    def post(
        self, payload: dict[str, Any], *, channel: str | None, thread_ts: str | None, broadcast: bool
    ) -> Posted:
        target = channel or self.default_channel
        if not target:
            raise DeliveryError("slack", "no channel: set `channel` in the Slack secret or route the run")
        kwargs: dict[str, Any] = {
            "channel": target,
            "text": payload.get("text", ""),
            "attachments": payload.get("attachments"),
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
            kwargs["reply_broadcast"] = broadcast
        from slack_sdk.errors import SlackApiError  # noqa: PLC0415 - lazy: only with Slack

        try:
            resp = self.client.chat_postMessage(**kwargs)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            raise DeliveryError("slack", f"chat.postMessage failed: {error or exc}") from exc
        except Exception as exc:
            raise DeliveryError("slack", f"Slack unreachable: {type(exc).__name__}") from exc
        return Posted(channel=str(resp.get("channel") or target), ts=str(resp.get("ts") or ""))


#: slack-sdk logs each request's URL (for a webhook, the URL is the credential) and, at DEBUG,
#: its headers (the bot token): its clients get this muted logger. Failures still surface as
#: DeliveryError, which names no secret.
_SDK_LOG = logging.getLogger("notify.slack_sdk")
_SDK_LOG.addHandler(logging.NullHandler())
_SDK_LOG.propagate = False
_SDK_LOG.setLevel(logging.CRITICAL + 1)


def make_poster(config: SlackConfig, *, base_url: str | None = None, backoff: float = 0.5) -> SlackPoster:
    from slack_sdk import WebClient  # noqa: PLC0415 - lazy: only with Slack
    from slack_sdk.webhook import WebhookClient  # noqa: PLC0415

    handlers = retry_handlers(backoff=backoff)
    if config.bot_token:
        kwargs: dict[str, Any] = {
            "token": config.bot_token,
            "retry_handlers": handlers,
            "timeout": 10,
            "logger": _SDK_LOG,
        }
        if base_url:
            kwargs["base_url"] = base_url
        return BotPoster(WebClient(**kwargs), config.channel)
    return WebhookPoster(
        WebhookClient(config.webhook_url, timeout=10, retry_handlers=handlers, logger=_SDK_LOG)
    )


# -- S3 stderr ------------------------------------------------------------------------------------


class S3StderrReader:
    """The end of a task's stderr: one ranged GET of the last `max_bytes`, decode errors replaced."""

    def __init__(self, client: S3Client, *, max_bytes: int = 65536) -> None:
        self.client = client
        self.max_bytes = max_bytes

    def tail(self, uri: str, lines: int) -> list[str] | None:
        parts = split_s3_uri(uri)
        if parts is None or not parts[1]:
            return None
        bucket, key = parts
        try:
            resp = self.client.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{self.max_bytes}")
            data = resp["Body"].read(self.max_bytes + 1)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return []  # an empty object
            return None
        except BotoCoreError:
            return None
        partial = not str(resp.get("ContentRange", "bytes 0-")).startswith("bytes 0-")
        text = data.decode("utf-8", errors="replace")
        rows = text.splitlines()
        if partial and rows:
            rows = rows[1:]  # the first line was cut by the range
        return rows[-lines:] if lines > 0 else []
