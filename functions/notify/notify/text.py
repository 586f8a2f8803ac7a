"""Text hygiene for user-controlled strings (workflow names, labels, reasons, stderr)."""

from __future__ import annotations

import re
import unicodedata

# C0/C1 controls and DEL, and the Unicode bidi embedding/override/isolate marks that can make a
# name display as something else (U+202A..U+202E, U+2066..U+2069).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_SPACES = re.compile(r"\s+")
ELLIPSIS = "..."


def one_line(value: object, limit: int = 0) -> str:
    """A single line: control characters and line breaks become spaces, runs of space collapse."""
    text = _SPACES.sub(" ", _CONTROL.sub(" ", str(value if value is not None else ""))).strip()
    return clip(text, limit) if limit else text


def clean_block(value: str) -> str:
    """Multi-line text (stderr): keep line breaks and tabs, drop ANSI colours and other controls."""
    text = _ANSI.sub("", value).replace("\r\n", "\n").replace("\r", "\n")
    text = _BIDI.sub("", text)
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", "", text)


def clip(text: str, limit: int, marker: str = ELLIPSIS) -> str:
    """At most `limit` characters; a clipped text ends with `marker`."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    if limit <= len(marker):
        return text[:limit]
    return text[: limit - len(marker)].rstrip() + marker


def ascii_only(value: str) -> str:
    """Transliterate what has an ASCII form (accents: e -> e), drop the rest (emoji, RTL)."""
    decomposed = unicodedata.normalize("NFKD", value)
    return decomposed.encode("ascii", "ignore").decode("ascii")


def slack_escape(value: str) -> str:
    """Escape the three characters Slack's mrkdwn gives a meaning to."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def clip_mrkdwn(text: str, limit: int) -> str:
    """Clip escaped mrkdwn without cutting an entity (`&amp;`) or a link (`<url|label>`) in two."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(ELLIPSIS), 0)]
    cut = _PARTIAL_ENTITY.sub("", cut)
    if cut.rfind("<") > cut.rfind(">"):
        cut = cut[: cut.rfind("<")]
    if cut.count("```") % 2 == 1:
        cut = cut[: max(limit - len(ELLIPSIS) - 3, 0)]
        cut = _PARTIAL_ENTITY.sub("", cut)
        if cut.rfind("<") > cut.rfind(">"):
            cut = cut[: cut.rfind("<")]
        return cut + "```" + ELLIPSIS if cut.count("```") % 2 == 1 else cut + ELLIPSIS
    return cut + ELLIPSIS
