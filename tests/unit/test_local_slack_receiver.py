"""The local stack's Slack receiver answers the Web API's chat.postMessage as Slack does, to the
same client notify uses (`notify.adapters.make_poster` with a bot token and a base URL): a `ts`
per message, the thread a reply names recorded, a wrong token or no channel refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.stack.receivers import SlackReceiver
from notify.adapters import DeliveryError, SlackConfig, make_poster

PAYLOAD = {"text": "Run failed: demo", "attachments": [{"color": "#d00000", "blocks": []}]}


@pytest.fixture
def receiver() -> Iterator[SlackReceiver]:
    server = SlackReceiver()
    yield server
    server.close()


def test_a_bot_posts_a_thread_through_chat_post_message(receiver: SlackReceiver) -> None:
    poster = make_poster(
        SlackConfig(bot_token=receiver.bot_token, channel="C0RUNS"), base_url=receiver.api_url
    )
    first = poster.post(PAYLOAD, channel=None, thread_ts=None, broadcast=False)
    reply = poster.post(PAYLOAD, channel="C0RUNS", thread_ts=first.ts, broadcast=True)
    assert first.channel == "C0RUNS"
    assert first.ts
    assert reply.ts != first.ts
    posts = receiver.received()
    assert [(p.channel, p.thread_ts, p.thread) for p in posts] == [
        ("C0RUNS", None, first.ts),
        ("C0RUNS", first.ts, first.ts),
    ]
    assert posts[1].payload["reply_broadcast"] is True
    assert posts[0].rendered() == "Run failed: demo"


def test_a_wrong_token_is_refused_and_nothing_is_recorded(receiver: SlackReceiver) -> None:
    poster = make_poster(
        SlackConfig(bot_token="xoxb-someone-else", channel="C0RUNS"), base_url=receiver.api_url, backoff=0.01
    )
    with pytest.raises(DeliveryError, match="invalid_auth"):
        poster.post(PAYLOAD, channel=None, thread_ts=None, broadcast=False)
    assert receiver.received() == []


def test_a_webhook_post_is_still_answered_ok(receiver: SlackReceiver) -> None:
    poster = make_poster(SlackConfig(webhook_url=receiver.webhook_url), backoff=0.01)
    poster.post(PAYLOAD, channel=None, thread_ts=None, broadcast=False)
    (post,) = receiver.received()
    assert (post.ts, post.thread) == ("", None)
