"""Where the local stack's messages end up: a Slack receiver on loopback (incoming webhooks, and
the Web API's `chat.postMessage` a bot token posts with, threads included), and the e-mail inbox
(the SQS queue subscribed to the topic in place of the e-mail address)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from local.stack.loopback import LoopbackServer, QuietHandler
from local.stack.polling import IdleBackoff

#: The Web API method a bot token posts with (`slack_sdk.WebClient.chat_postMessage`).
POST_MESSAGE = "chat.postMessage"
#: The bot token the receiver accepts: the local stack's own, never a real one.
LOCAL_BOT_TOKEN = "xoxb-local-loopback"  # noqa: S105  # nosec B105


@dataclass(frozen=True)
class SlackPost:
    path: str
    payload: dict[str, Any]
    at: float = field(default_factory=time.time)
    #: A `chat.postMessage` answer's `ts` (the message's id); "" for a webhook post.
    ts: str = ""

    @property
    def channel(self) -> str | None:
        return str(self.payload["channel"]) if self.payload.get("channel") else None

    @property
    def thread_ts(self) -> str | None:
        """The thread the message replies in (None: it starts one, or a webhook has none)."""
        return str(self.payload["thread_ts"]) if self.payload.get("thread_ts") else None

    @property
    def thread(self) -> str | None:
        """The thread the message belongs to: the one it replies in, else its own."""
        return self.thread_ts or self.ts or None

    @property
    def text(self) -> str:
        """The message's notification text (`text`)."""
        return str(self.payload.get("text") or "")

    def rendered(self) -> str:
        """The message roughly as Slack shows it: its blocks' text, one line each, else `text`."""
        blocks = list(self.payload.get("blocks") or [])
        for attachment in self.payload.get("attachments") or []:
            blocks.extend(attachment.get("blocks") or [])
        lines: list[str] = []
        for block in blocks:
            text = block.get("text")
            if isinstance(text, dict) and text.get("text"):
                lines.append(str(text["text"]))
            fields = [str(f.get("text", "")).replace("\n", ": ", 1) for f in block.get("fields") or []]
            if fields:
                lines.append(" | ".join(fields))
            for element in block.get("elements") or []:
                if isinstance(element, dict) and element.get("text"):
                    lines.append(str(element["text"]))
        return "\n".join(lines) or self.text

    def mentions(self, needle: str) -> bool:
        return needle in json.dumps(self.payload)


class SlackReceiver(LoopbackServer):
    """Plays Slack and records every message: answers `ok` to a POST like an incoming webhook,
    and to `<api_url>chat.postMessage` like the Web API (`{"ok": true, "channel", "ts"}`, a `ts`
    of its own per message; `invalid_auth` unless the request carries `bot_token`,
    `channel_not_found` without a channel)."""

    def __init__(
        self,
        on_post: Callable[[SlackPost], None] | None = None,
        host: str = "127.0.0.1",
        *,
        bot_token: str = LOCAL_BOT_TOKEN,
    ) -> None:
        self.posts: list[SlackPost] = []
        self._lock = threading.Lock()
        self.on_post = on_post
        self.bot_token = bot_token
        self._sent = 0
        outer = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                raw = self.request_body() or b"{}"
                if self.path.rstrip("/").endswith(POST_MESSAGE):
                    answer = outer._post_message(self.path, raw, self.headers.get("Authorization", ""))
                    self._reply(json.dumps(answer).encode(), "application/json; charset=utf-8")
                    return
                try:
                    payload = json.loads(raw)
                except ValueError:
                    payload = {"raw": raw.decode("utf-8", "replace")}
                outer._record(SlackPost(self.path, payload))
                self._reply(b"ok", "text/plain")

            def _reply(self, body: bytes, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler, name="slack-receiver", host=host, port=0)

    def _record(self, post: SlackPost) -> None:
        with self._lock:
            self.posts.append(post)
        if self.on_post is not None:
            self.on_post(post)

    def _post_message(self, path: str, raw: bytes, authorization: str) -> dict[str, Any]:
        """What Slack answers a `chat.postMessage` (JSON or form-encoded arguments)."""
        if authorization != f"Bearer {self.bot_token}":
            return {"ok": False, "error": "invalid_auth"}
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        if not isinstance(payload, dict) or not payload.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        with self._lock:
            self._sent += 1
            ts = f"{int(time.time())}.{self._sent:06d}"
        self._record(SlackPost(path, payload, ts=ts))
        message = {"type": "message", "text": payload.get("text", ""), "ts": ts}
        if payload.get("thread_ts"):
            message["thread_ts"] = payload["thread_ts"]
        return {"ok": True, "channel": payload["channel"], "ts": ts, "message": message}

    @property
    def webhook_url(self) -> str:
        return f"http://{self.host}:{self.port}/services/TLOCAL/BLOCAL/local-webhook"

    @property
    def api_url(self) -> str:
        """The Web API's base URL here (`slack_sdk.WebClient(base_url=...)`)."""
        return f"http://{self.host}:{self.port}/api/"

    def received(self) -> list[SlackPost]:
        with self._lock:
            return list(self.posts)


@dataclass(frozen=True)
class Email:
    """One notification as the e-mail subscriber would get it."""

    subject: str
    body: str
    at: float = field(default_factory=time.time)

    def mentions(self, needle: str) -> bool:
        return needle in self.subject or needle in self.body


class Inbox:
    """Drains the SNS-subscribed stand-in queue(s) into `Email`s."""

    def __init__(
        self,
        sqs: Any,
        queue_urls: list[str],
        on_email: Callable[[Email], None] | None = None,
        poll_seconds: float = 0.1,
        idle_seconds: float = 0.4,
        email_text: Callable[[str], str | None] | None = None,
    ) -> None:
        self.sqs = sqs
        self.queue_urls = queue_urls
        self.on_email = on_email
        self.poll_seconds = poll_seconds
        self.idle_seconds = idle_seconds
        #: The e-mail protocol's text of a published message (by MessageId), when the publisher
        #: used MessageStructure=json: the queue itself only receives the `default` text.
        self.email_text = email_text
        self.emails: list[Email] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="email-inbox", daemon=True)

    def start(self) -> None:
        if self.queue_urls:
            self._thread.start()

    def received(self) -> list[Email]:
        with self._lock:
            return list(self.emails)

    def drain(self) -> int:
        count = 0
        for url in self.queue_urls:
            messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for message in messages.get("Messages", []):
                envelope = json.loads(message["Body"])
                body = str(envelope.get("Message") or "")
                if self.email_text is not None:
                    body = self.email_text(str(envelope.get("MessageId") or "")) or body
                email = Email(str(envelope.get("Subject") or ""), body)
                with self._lock:
                    self.emails.append(email)
                if self.on_email is not None:
                    self.on_email(email)
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                count += 1
        return count

    def _run(self) -> None:
        backoff = IdleBackoff(self._stop, self.poll_seconds, self.idle_seconds)
        while not self._stop.is_set():
            try:
                got = self.drain()
            except Exception:  # the moto server is going away; stop quietly
                if self._stop.is_set():
                    return
                got = 0
            backoff.after(bool(got))

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
