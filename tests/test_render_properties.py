"""Property tests over every message template: whatever people type, the message is sound.

Every template of both locales is rendered, in both text formats, with its contexts from
``tests/test_render.py`` and arbitrary text (Hypothesis) in every place where something a
person typed or chose flows in: a report, a note, a reason, a rating's words, a person's
name, phone and address, a chat's title, a notice, an echoed argument. Whatever the text
(HTML-looking ``<b>`` and ``&amp;``, ``<script>``, control characters, emoji, CJK,
right-to-left text, very long text), rendering never fails; HTML output is what Telegram
accepts (its own tags only, balanced, entities valid); typed text never becomes markup;
no control character but a line break or a tab reaches the reader; and Telegram's
splitting keeps every part within the limit and loses no text.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridbot.adapters.telegram.html import MAX_TEXT, split_message, units
from gridbot.commands import clean_text
from gridbot.config import LOCALES
from gridbot.domain import Case, CaseEvent, Delivery, Notice, Person, TextFormat
from tests.fake_telegram import parse_html
from tests.test_render import CONTEXTS, message_templates, render

#: What a person may type: anything, and more often what tends to break markup.
_NASTY = ["<b>", "</b>", "<b>bold</b>", "&amp;", "&", "&lt;", "&#x27;", "&#0;", "&bogus;",
          "<script>alert(1)</script>", '<a href="javascript:x">', "</blockquote>", "<",
          ">", "'", '"', "\x00", "\x07", "\x1b[31m", "\r\n", "\r", "\x0b", "\x0c", "\x7f",
          "\x85", "\u2028", "\u2029", "\u202e", "\u200f", "\ufeff", "\t", "\n", "\n\n\n",
          "👨\u200d👩\u200d👧", "🧱", "1️⃣", "👍🏽", "楼道灯坏了", "عربي", "עברית", "  ", "{{ x }}",
          "{% if %}", "#12", "\U0001f600" * 3, "ｆｕｌｌ"]
_PIECE = st.one_of(st.sampled_from(_NASTY), st.text(max_size=12),
                   st.text(alphabet="<>&;#/abisxcript=\"' \n", max_size=12))
USER_TEXT = st.one_of(
    st.text(max_size=40),
    st.lists(_PIECE, max_size=8).map("".join),
    # very long: several times over Telegram's limit once repeated
    st.builds(lambda piece, n: piece * n, st.lists(_PIECE, min_size=1, max_size=4).map("".join)
              .filter(bool), st.integers(min_value=200, max_value=1500)),
)

#: Top-level context values that hold what someone typed (elsewhere these keys hold a
#: fixed choice the template branches on: those templates are listed in CHOICES).
FREE_KEYS = {"text", "reason", "name", "word", "code", "item"}
CHOICES = {("error_link_code", "reason"), ("error_notice_scope", "reason"),
           ("error_notice_time", "reason"), ("error_duration", "reason"),
           ("error_offer", "reason"), ("error_errand", "reason"), ("error_patrol", "reason"),
           ("error_swap", "reason")}

_TAG = re.compile(r"<[^<>]*>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: Telegram's tags (https://core.telegram.org/bots/api#html-style)
TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span",
                 "tg-spoiler", "a", "code", "pre", "blockquote", "tg-emoji", "tg-time"}

TEMPLATES = sorted({name for locale in LOCALES for name in message_templates(locale)})


def test_every_template_of_both_locales_is_enumerated() -> None:
    for locale in LOCALES:
        assert set(message_templates(locale)) <= set(TEMPLATES)
    assert {"notify_assignee", "status_detail", "notice_status", "help"} <= set(TEMPLATES)


def _inject(name: str, context: dict[str, Any], text: Callable[..., str]) -> dict[str, Any]:
    """``context`` with ``text()`` wherever a person's words or names flow in
    (``text(platform=True)`` where the platform names it: a chat's title, an error)."""

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, Case):
            return dataclasses.replace(
                value, text=text(), rating_text=text() if value.rating_text else "")
        if isinstance(value, Person):
            return dataclasses.replace(value, name=text(), phone=text(), address=text())
        if isinstance(value, CaseEvent):
            return dataclasses.replace(value, text=text()) if value.text else value
        if isinstance(value, Notice):
            return dataclasses.replace(value, text=text())
        if isinstance(value, Delivery):
            return dataclasses.replace(value, title=text(platform=True),
                                       error=text(platform=True))
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            return tuple(walk(v) for v in value)
        if isinstance(value, dict) and key == "names":
            return {k: text() for k in value}
        if isinstance(value, str) and key in FREE_KEYS and (name, key) not in CHOICES:
            return text()
        return value

    return {key: walk(value, key) for key, value in context.items()}


def _defanged(value: str) -> str:
    """The same text with nothing that could make markup: same length, same lines."""
    return re.sub(r"[<>&\"';]", "x", value)


def _check_html(out: str, defanged: str) -> None:
    shown = parse_html(out)  # raises as Telegram would: unknown tag, unbalanced, bad entity
    tags = _TAG.findall(out)
    for tag in tags:
        assert re.match(r"</?([a-z-]+)", tag)[1] in TELEGRAM_TAGS, tag
    # Typed text made no markup: the tags are those of the same text without markup
    # characters (same length and lines, so the same branches and cuts are taken).
    assert tags == _TAG.findall(defanged)
    assert "<script" not in out.lower()
    assert not _CONTROL.search(shown.replace("\t", "").replace("\n", ""))


def _check_split(out: str, *, html: bool) -> None:
    parts = split_message(out, html=html)
    assert parts
    assert all(units(p) <= MAX_TEXT for p in parts)
    if html:
        shown = [parse_html(p) for p in parts]  # each part is valid on its own
        whole = parse_html(out)
    else:
        shown, whole = parts, out
    squash = lambda s: "".join(s.split())  # noqa: E731  (cuts fall at white space)
    assert squash("".join(shown)) == squash(whole)


PARAMS = [pytest.param(name, id=name) for name in TEMPLATES]


@pytest.mark.parametrize("name", PARAMS)
@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), locale=st.sampled_from(LOCALES), in_group=st.booleans())
def test_any_typed_text_renders_soundly(name: str, data: st.DataObject, locale: str,
                                        in_group: bool) -> None:
    if name not in CONTEXTS:  # test_render's own coverage test fails for it meanwhile
        pytest.skip(f"{name}: no contexts in tests/test_render.py CONTEXTS yet")
    index = data.draw(st.integers(min_value=0, max_value=len(CONTEXTS[name]) - 1),
                      label="context")
    drawn: list[str] = []

    def text(platform: bool = False) -> str:
        # Raw: the intake cleans what people type, but a chat's title or a name from a
        # sheet may arrive as the platform sent it; the renderer keeps control characters
        # out whatever the context holds.
        drawn.append(data.draw(USER_TEXT))
        return drawn[-1]

    context = _inject(name, CONTEXTS[name][index], text)
    replay = iter(drawn)
    same_shape = _inject(name, CONTEXTS[name][index],
                         lambda platform=False: _defanged(next(replay)))

    plain = render(name, locale, TextFormat.PLAIN, in_group=in_group, **context)
    html = render(name, locale, TextFormat.HTML, in_group=in_group, **context)
    html_defanged = render(name, locale, TextFormat.HTML, in_group=in_group, **same_shape)

    assert "&lt;" not in _defanged(plain)  # (plain text is never escaped: see test_render)
    assert not _CONTROL.search(plain.replace("\t", "").replace("\n", "")), repr(plain)
    _check_html(html, html_defanged)
    _check_split(plain, html=False)
    _check_split(html, html=True)


@settings(max_examples=60, deadline=None)
@given(text=USER_TEXT, locale=st.sampled_from(LOCALES))
def test_a_typed_tag_arrives_escaped_and_as_typed(text: str, locale: str) -> None:
    text = clean_text(text) + " <b>x</b> & <script>"
    context = _inject("notify_assignee", CONTEXTS["notify_assignee"][0], lambda: text)
    html = render("notify_assignee", locale, TextFormat.HTML, **context)
    assert "&lt;b&gt;x&lt;/b&gt; &amp; &lt;script&gt;" in html
    assert "<script" not in html and "<b>x" not in html
    plain = render("notify_assignee", locale, TextFormat.PLAIN, **context)
    assert "<b>x</b> & <script>" in plain
    # What Telegram shows is what was typed (a long report comes in several parts).
    shown = "".join(parse_html(p) for p in split_message(html, html=True))
    assert "<b>x</b> & <script>" in shown.replace("\n", "")


@settings(max_examples=20, deadline=None)
@given(title=st.sampled_from(["\x08", "\x1b[31m", "群\x00名", "\x7f"]))
def test_a_chat_title_with_control_characters_does_not_leak(title: str) -> None:
    context = dict(CONTEXTS["notice_status"][1])
    context["problems"] = [dataclasses.replace(p, title=title) for p in context["problems"]]
    plain = render("notice_status", "zh-CN", TextFormat.PLAIN, **context)
    assert not _CONTROL.search(plain.replace("\t", "").replace("\n", ""))
