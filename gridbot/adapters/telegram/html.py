"""Cutting a long Telegram message into messages under the length limit.

Telegram refuses a text over 4,096 characters, and refuses HTML whose tags do not
pair up. A cut therefore falls at a line break when there is one (else at a space,
else anywhere), never inside a tag, an entity (``&amp;``) or an emoji sequence; tags
open at the cut are closed at the end of one part and opened again at the start of
the next. Lengths are counted in UTF-16 code units, as Telegram counts them, and over
the HTML source, which is never shorter than the text Telegram shows: a part that
fits here fits there.
"""

from __future__ import annotations

import re

#: Telegram's limit for one message's text
MAX_TEXT = 4096

# A tag, an entity, a line break, other white space, or one character with whatever
# joins it to the next (zero-width joiner sequences, variation selectors, skin tones,
# keycaps, combining marks), so that no emoji is cut in half.
_JOINED = r"(?:\u200d.|[\ufe0e\ufe0f\u20e3\U0001f3fb-\U0001f3ff\u0300-\u036f])*"
_HTML_TOKEN = re.compile(r"<[^<>]*>|&#?[A-Za-z0-9]+;|\n|\s|." + _JOINED, re.DOTALL)
_PLAIN_TOKEN = re.compile(r"\n|\s|." + _JOINED, re.DOTALL)
_TAG = re.compile(r"<\s*(/?)\s*([A-Za-z][\w-]*)")


def units(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def split_message(text: str, *, html: bool, limit: int = MAX_TEXT) -> list[str]:
    """``text`` as one or more parts of at most ``limit`` units, each valid on its own."""
    if units(text) <= limit:
        return [text]
    tokens = (_HTML_TOKEN if html else _PLAIN_TOKEN).findall(text)
    parts: list[str] = []
    stack: list[tuple[str, str]] = []  # open tags: (name, the tag as written)
    i = 0
    while i < len(tokens):
        prefix = "".join(opened for _, opened in stack)
        size = units(prefix)
        open_now = list(stack)
        j = i
        at_line: tuple[int, list[tuple[str, str]]] | None = None
        at_space: tuple[int, list[tuple[str, str]]] | None = None
        while j < len(tokens):
            token = tokens[j]
            after = _apply(open_now, token) if html else open_now
            if size + units(token) + _closing_units(after) > limit:
                break
            size += units(token)
            open_now = after
            j += 1
            if token == "\n":
                at_line = (j, list(open_now))
            elif token.isspace():
                at_space = (j, list(open_now))
        if j == len(tokens):
            cut, open_at_cut = j, open_now
        elif at_line is not None:
            cut, open_at_cut = at_line
        elif at_space is not None:
            cut, open_at_cut = at_space
        elif j > i:
            cut, open_at_cut = j, open_now
        else:  # a single token longer than the limit (only with an absurd limit)
            cut, open_at_cut = i + 1, _apply(open_now, tokens[i]) if html else open_now
        body = "".join(tokens[i:cut])
        part = prefix + body + "".join(f"</{name}>" for name, _ in reversed(open_at_cut))
        if _visible(part, html):
            parts.append(part)
        stack = open_at_cut
        i = cut
    return parts


def _apply(stack: list[tuple[str, str]], token: str) -> list[tuple[str, str]]:
    """The open-tag stack after ``token``."""
    match = _TAG.match(token) if token.startswith("<") else None
    if match is None:
        return stack
    closing, name = match[1], match[2].lower()
    if not closing:
        return [*stack, (name, token)]
    for k in range(len(stack) - 1, -1, -1):
        if stack[k][0] == name:
            return stack[:k]
    return stack


def _closing_units(stack: list[tuple[str, str]]) -> int:
    return sum(len(name) + 3 for name, _ in stack)


def _visible(part: str, html: bool) -> bool:
    """Whether a part shows anything; Telegram refuses an empty message."""
    text = re.sub(r"<[^<>]*>", "", part) if html else part
    return bool(text.strip())
