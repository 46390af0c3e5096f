"""Cutting long Telegram messages: every part under the limit and valid HTML on its own."""

from __future__ import annotations

import html

from hypothesis import given, settings
from hypothesis import strategies as st

from gridbot.adapters.telegram.html import split_message, units
from tests.fake_telegram import parse_html


def test_short_text_is_one_part() -> None:
    assert split_message("<b>#12</b> 楼道灯", html=True) == ["<b>#12</b> 楼道灯"]


def test_cuts_at_line_breaks_first() -> None:
    text = "\n".join(f"line {n:02d} words here" for n in range(10))
    parts = split_message(text, html=False, limit=60)
    assert all(units(p) <= 60 for p in parts)
    for part in parts:
        for line in part.strip("\n").split("\n"):
            assert line.startswith("line ") and line.endswith("here")


def test_tags_open_at_a_cut_are_closed_and_reopened() -> None:
    text = '<blockquote><a href="https://x.example/?a=1&amp;b=2">' + "字" * 30 + "</a></blockquote>"
    parts = split_message(text, html=True, limit=90)
    assert len(parts) > 1
    for part in parts:
        assert units(part) <= 90
        parse_html(part)  # raises if Telegram would refuse it
        assert part.startswith('<blockquote><a href="https://x.example/?a=1&amp;b=2">')
    assert "".join(parse_html(p) for p in parts) == "字" * 30


def test_entities_and_emoji_stay_whole() -> None:
    family = "👨\u200d👩\u200d👧"
    text = ("&amp;" + family) * 40
    parts = split_message(text, html=True, limit=37)
    assert all(units(p) <= 37 for p in parts)
    assert "".join(parse_html(p) for p in parts) == ("&" + family) * 40


def test_length_is_counted_in_utf16_units() -> None:
    text = "🧱" * 3000  # 6,000 units, 3,000 code points
    parts = split_message(text, html=False)
    assert len(parts) == 2 and all(units(p) <= 4096 for p in parts)


_pieces = st.lists(st.one_of(
    st.text(alphabet="ab 中文\n<>&🧱", min_size=1, max_size=12).map(
        lambda t: html.escape(t, quote=False)),
    st.sampled_from(["<b>", "</b>", "<i>", "</i>", "<code>", "</code>"]),
), max_size=60)


def _balanced(pieces: list[str]) -> str:
    """Drop closing tags that close nothing, nest at most three deep, close what is open."""
    out, stack = [], []
    for piece in pieces:
        if piece.startswith("</"):
            if stack and stack[-1] == piece[2:-1]:
                stack.pop()
                out.append(piece)
        elif piece.startswith("<") and piece.endswith(">") and piece[1:-1].isalpha():
            if len(stack) == 3:
                continue
            stack.append(piece[1:-1])
            out.append(piece)
        else:
            out.append(piece)
    return "".join(out) + "".join(f"</{t}>" for t in reversed(stack))


@settings(max_examples=200, deadline=None)
@given(_pieces, st.integers(min_value=50, max_value=120))
def test_any_valid_html_splits_into_valid_parts(pieces: list[str], limit: int) -> None:
    text = _balanced(pieces)
    parts = split_message(text, html=True, limit=limit)
    shown = []
    for part in parts:
        assert units(part) <= limit
        shown.append(parse_html(part))
        assert shown[-1].strip() or len(parts) == 1
    squash = lambda s: "".join(s.split())  # noqa: E731
    assert squash("".join(shown)) == squash(parse_html(text))
