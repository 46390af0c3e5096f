"""Turning a line of chat into a command: ``/claim 12``, ``/claim@GridBot 12``, ``认领 12``.

The words are those the handlers declared (:mod:`gridbot.declare`); :class:`Commands`
reads a line with them. Chinese keywords count only at the start of a message and only
when followed by a boundary (space, punctuation, ``#`` or a digit), so ordinary chat
such as "我的车被挡住了" is never mistaken for ``我的`` (/mine). Commands without
arguments must stand alone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gridbot.declare import Args, CommandSpec

_BOUNDARY = re.compile(r"[\s:：,，.。!！?？#＃\d０-９、;；]")
_TRAILING = " \t\r\n.。!！?？~～"
#: C0/C1 controls (but tab and newline), zero-width space, bidi marks, embeddings,
#: overrides and isolates, and the BOM. Zero-width (non-)joiners stay: emoji sequences
#: such as 👨‍👩‍👧 are held together by U+200D.
CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e"
    r"\u2066-\u2069\ufeff]"
)
#: The command word ends at the first whitespace of any kind (space, tab, newline, the
#: full-width space U+3000 that Chinese input methods type, no-break space).
_SLASH = re.compile(r"(\S*)\s*(.*)", re.DOTALL)


@dataclass(frozen=True, kw_only=True)
class ParsedCommand:
    name: str
    args: str
    #: how the person wrote it (``/claim``, ``认领``), to echo in usage hints
    word: str


@dataclass(frozen=True, kw_only=True)
class UnknownCommand:
    word: str
    #: written as ``/word@ThisBot``: certainly meant for us, even in a group where other
    #: bots have commands of their own
    addressed: bool = False


def clean_text(text: str) -> str:
    """Drop control and bidi-override characters; keep emoji, CJK and line breaks."""
    return CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


_SEPARATOR = re.compile(r"^[\s:：,，、;；]+")


def _strip_separator(rest: str) -> str:
    return _SEPARATOR.sub("", rest).strip()


#: A case number ends at whitespace, the end, or punctuation; ``12.5`` is not case 12.
#: Its digits are ASCII or full-width: other scripts' digits (Arabic-Indic ``١٢``) are
#: refused rather than read, as nobody here writes them and a misread number acts on
#: someone else's case.
_NUMBER = re.compile(
    r"^\s*[#＃№]?\s*([0-9０-９]{1,12})(?=\s|$|[,，:：。、;；!！?？]|\.(?![0-9０-９]))")


def split_case_number(args: str) -> tuple[int | None, str]:
    """Take a leading case number (``12``, ``#12``, ``＃１２``) off the arguments."""
    match = _NUMBER.match(args)
    if not match:
        return None, args.strip()
    return int(match[1]), args[match.end():].lstrip(" ,，:：。.、;；!！?？").strip()


def split_word(args: str) -> tuple[str, str]:
    """The first word and the rest, split at any whitespace (the full-width space too)."""
    first, rest = [*args.split(maxsplit=1), "", ""][:2]
    return first, rest


# -- "did you mean": a command word typed one key off --------------------------------------

_HEAD = re.compile(r"[^\s:：,，.。!！?？#＃\d０-９、;；@/]+")
_LINK_CODE = re.compile(r"[A-Za-z0-9-]{4,}\s*$")


@dataclass(frozen=True, kw_only=True)
class Suggestion:
    """A command the person probably meant: ``line`` as they would write it (``认领 1``)
    and ``command`` as a button sends it (``/claim 1``)."""

    name: str
    line: str
    command: str


def distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) turning ``a`` into ``b``."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, previous2[j - 2] + 1)
            row.append(cost)
        previous2, previous = previous, row
    return previous[-1]


def _near(typed: str, word: str) -> bool:
    """One key off a Chinese keyword (a two-character one keeping its first character, so
    "好的" is not taken for "我的"), or close to an English command word."""
    if typed == word or len(typed) < 2:
        return typed == word
    if typed.isascii():
        return distance(typed, word) <= (1 if len(word) <= 4 else 2)
    if len(word) == 2 and typed[0] != word[0]:
        return False
    return distance(typed, word) == 1


def _fits(spec: CommandSpec, rest: str) -> bool:
    """Whether what follows the word is what the command takes, as far as a typo is
    concerned: a number for the numbered ones, a code for link, nothing for the rest."""
    if spec.args is Args.CODE:
        return bool(_LINK_CODE.match(rest))
    if spec.args not in (Args.NUMBER, Args.NUMBER_ONLY):
        return not rest.strip(_TRAILING)
    number, after = split_case_number(rest)
    return number is not None and not (spec.args is Args.NUMBER_ONLY
                                       and after.strip(_TRAILING))


class Commands:
    """The words of a set of declared commands: what a line says, and what a line one
    key off probably meant."""

    def __init__(self, specs: Iterable[CommandSpec]) -> None:
        self.specs = tuple(specs)
        self._by_name = {spec.name: spec for spec in self.specs}
        self._by_word: dict[str, CommandSpec] = {}
        for spec in self.specs:
            for word in (*spec.english, *spec.chinese):
                self._by_word[word.lower()] = spec
        self._keywords = sorted(((kw, spec) for spec in self.specs for kw in spec.chinese),
                                key=lambda item: -len(item[0]))

    def spec(self, name: str) -> CommandSpec:
        return self._by_name[name]

    def parse(self, text: str, bot_username: str | None = None
              ) -> ParsedCommand | UnknownCommand | None:
        """Parse one message; ``None`` means ordinary chat, not meant for the bot."""
        text = clean_text(text)
        if not text:
            return None
        head = unicodedata.normalize("NFKC", text[:1])
        if head == "/":
            return self._parse_slash(text, bot_username)
        for keyword, spec in self._keywords:
            if not text.startswith(keyword):
                continue
            rest = text[len(keyword):]
            if not spec.takes_args:
                if rest.strip(_TRAILING):
                    return None
                return ParsedCommand(name=spec.name, args="", word=keyword)
            if rest and keyword not in spec.glued and not _BOUNDARY.match(rest):
                return None
            implied = dict(spec.implied).get(keyword)
            args = _strip_separator(rest)
            if not args.strip(_TRAILING):
                args = ""  # "进度？" asks for the list, like "进度"
            if implied is not None:
                args = f"{implied} {args}".strip()
            return ParsedCommand(name=spec.name, args=args, word=keyword)
        return None

    def _parse_slash(self, text: str, bot_username: str | None
                     ) -> ParsedCommand | UnknownCommand | None:
        match = _SLASH.match(text[1:])
        assert match is not None  # the pattern matches any string
        first, rest = match[1], match[2]
        word, _, addressee = unicodedata.normalize("NFKC", first).partition("@")
        if addressee and bot_username and addressee.lower() != bot_username.lower():
            return None  # a command for another bot in the same group
        spec = self._by_word.get(word.lower())
        if spec is None:
            if not word:
                return None
            return UnknownCommand(word="/" + word[:32], addressed=bool(addressee))
        args = rest.strip()
        implied = dict(spec.implied).get(word)
        if implied is not None:
            args = f"{implied} {args}".strip()
        return ParsedCommand(name=spec.name, args=args, word="/" + word.lower())

    def suggest(self, text: str, allowed: Callable[[CommandSpec], bool] = lambda spec: True
                ) -> list[Suggestion]:
        """Commands ``text`` probably meant (``认岭 1`` → ``认领 1``, ``/cliam 1`` →
        ``/claim 1``), for the answer to a message that is no command; at most three, and
        only of commands ``allowed`` for the person."""
        text = clean_text(text)
        slash = unicodedata.normalize("NFKC", text[:1]) == "/"
        body = text[1:] if slash else text
        match = _HEAD.match(body)
        if not match:
            return []
        typed, rest = match[0], _strip_separator(body[match.end():])
        typed_lower = typed.lower()
        found: dict[str, tuple[int, Suggestion]] = {}
        for spec in self.specs:
            if not allowed(spec):
                continue
            words = spec.english if (slash or typed.isascii()) else spec.chinese
            for word in words:
                if word == typed_lower and slash:
                    continue  # a known slash command parses; nothing to suggest
                # A slash says "command" already; a bare word must also be followed by
                # what the command takes before it is taken for one.
                if not _near(typed_lower, word) or not (slash or _fits(spec, rest)):
                    continue
                kept = rest if spec.takes_args else ""
                line = f"{'/' if slash or typed.isascii() else ''}{word} {kept}".strip()
                args = f"{dict(spec.implied).get(word, '')} {kept}".strip()
                found.setdefault(line, (distance(typed_lower, word), Suggestion(
                    name=spec.name, line=line, command=f"/{spec.english[0]} {args}".strip())))
        if not found:
            return []
        # The nearest only: "/staus" meant /status rather than /stats.
        nearest = min(d for d, _ in found.values())
        return [s for d, s in found.values() if d == nearest][:3]
