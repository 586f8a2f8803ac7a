"""Subject rules, escaping, clipping, console links and failure classification."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from courier.failures import FailureKind, classify
from courier.links import log_stream_url, s3_folder_url, s3_uri_url
from notify.render_email import SUBJECT_FALLBACK, sns_subject
from notify.text import clip_mrkdwn, one_line, slack_escape
from tests.support.notify_fixtures import valid_sns_subject


@settings(max_examples=500)
@given(st.text())
def test_any_workflow_name_gives_a_valid_subject(name: str) -> None:
    assert valid_sns_subject(sns_subject(f"Courier: Run failed: {name}"))
    assert valid_sns_subject(sns_subject(name))


@given(st.text(alphabet=st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=80))
def test_plain_ascii_names_are_kept(name: str) -> None:
    assert sns_subject(name) == name


def test_subject_of_nothing_printable_falls_back() -> None:
    assert sns_subject("🧬🔥\n\t\u202e") == SUBJECT_FALLBACK
    assert sns_subject("") == SUBJECT_FALLBACK


def test_long_subject_is_clipped_with_ellipsis() -> None:
    subject = sns_subject("a" * 500)
    assert len(subject) == 99
    assert subject.endswith("...")


@given(st.text(max_size=400), st.integers(min_value=5, max_value=300))
def test_clipped_mrkdwn_never_leaves_a_broken_entity(text: str, limit: int) -> None:
    clipped = clip_mrkdwn(slack_escape(text), limit)
    assert len(clipped) <= limit
    for i in (i for i, c in enumerate(clipped) if c == "&"):
        assert clipped[i:].startswith(("&amp;", "&lt;", "&gt;"))


def test_escape_and_one_line() -> None:
    assert slack_escape("a & <b> c") == "a &amp; &lt;b&gt; c"
    assert one_line("x\n\ty\r\n\x00z\u202e") == "x y z"


def test_cloudwatch_link_uses_the_console_encoding() -> None:
    url = log_stream_url("eu-west-1", "cromwell_ubuntu/default/abc 1")
    assert url == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        "#logsV2:log-groups/log-group/$252Faws$252Fbatch$252Fjob/log-events/cromwell_ubuntu$252Fdefault$252Fabc$25201"
    )


def test_s3_links() -> None:
    assert s3_folder_url("us-east-1", "b", "a b/c") == (
        "https://us-east-1.console.aws.amazon.com/s3/buckets/b?region=us-east-1&prefix=a%20b%2Fc%2F&showversions=false"
    )
    assert s3_uri_url("cn-north-1", "s3://b/k.txt") == (
        "https://cn-north-1.console.amazonaws.cn/s3/object/b?region=cn-north-1&prefix=k.txt"
    )
    assert s3_uri_url("us-east-1", "gs://x/y") is None


class TestClassify:
    def test_spot(self) -> None:
        got = classify(status_reason="Host EC2 (instance i-0123456789abcdef0) terminated.", exit_code=None)
        assert got.kind is FailureKind.SPOT_INTERRUPTION

    def test_out_of_memory_by_exit_code_and_message(self) -> None:
        assert classify(exit_code=137).kind is FailureKind.OUT_OF_MEMORY
        assert classify(status_reason="OutOfMemoryError: Container killed due to memory usage").kind is (
            FailureKind.OUT_OF_MEMORY
        )

    def test_container_errors(self) -> None:
        for reason in (
            "CannotPullContainerError: x",
            "CannotStartContainerError: y",
            "ResourceInitializationError: z",
        ):
            assert classify(status_reason=reason).kind is FailureKind.CONTAINER_ERROR

    def test_script_failed(self) -> None:
        got = classify(status_reason="Essential container in task exited", exit_code=2)
        assert got.kind is FailureKind.SCRIPT_FAILED
        assert "non-zero" in got.explanation

    def test_abort_wins(self) -> None:
        assert classify(status_reason="cromwell abort called", exit_code=137).kind is FailureKind.ABORTED

    def test_cromwell_side_and_unknown(self) -> None:
        assert (
            classify(messages=("Failed to evaluate inputs",), has_batch_job=False).kind
            is FailureKind.CROMWELL_ERROR
        )
        assert classify(status_reason="something new", exit_code=0).kind is FailureKind.UNKNOWN

    def test_cromwell_message_can_classify(self) -> None:
        got = classify(status_reason=None, messages=("Task x failed: OutOfMemory",))
        assert got.kind is FailureKind.OUT_OF_MEMORY
