"""Turning a line of chat into a command: ``/claim 12``, ``/claim@GridBot 12``, ``认领 12``.

Chinese keywords count only at the start of a message and only when followed by a
boundary (space, punctuation, ``#`` or a digit), so ordinary chat such as
"我的车被挡住了" is never mistaken for ``我的`` (/mine). Commands without arguments
must stand alone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class CommandSpec:
    name: str
    english: tuple[str, ...]
    chinese: tuple[str, ...]
    takes_args: bool = True
    #: arguments implied by a keyword, e.g. 下班 = duty off
    implied: tuple[tuple[str, str], ...] = ()
    #: keywords that may run straight into their argument ("报事楼道灯坏了"); only words
    #: that never start ordinary chat belong here
    glued: tuple[str, ...] = ()


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(name="report", english=("report",), chinese=("报事", "报修"), glued=("报事",)),
    # the button under "登记为报事？": the words the bot offered, logged as a report
    CommandSpec(name="file", english=("file",), chinese=("登记",)),
    CommandSpec(name="status", english=("status",), chinese=("进度", "查询")),
    CommandSpec(name="cancel", english=("cancel",), chinese=("撤销", "撤回")),
    CommandSpec(name="confirm", english=("confirm",), chinese=("已解决",)),
    CommandSpec(name="reopen", english=("reopen",), chinese=("未解决",)),
    CommandSpec(name="rate", english=("rate",), chinese=("评价",)),
    CommandSpec(name="help", english=("help", "start"), chinese=("帮助",), takes_args=False),
    CommandSpec(name="claim", english=("claim",), chinese=("认领", "签收")),
    CommandSpec(name="note", english=("note", "progress"), chinese=("进展",)),
    CommandSpec(name="done", english=("done", "resolve"), chinese=("办结",)),
    CommandSpec(name="transfer", english=("transfer",), chinese=("转交",)),
    CommandSpec(name="escalate", english=("escalate",), chinese=("上报",)),
    CommandSpec(name="mine", english=("mine",), chinese=("我的",), takes_args=False),
    CommandSpec(name="duty", english=("duty",), chinese=("值班", "下班"),
                implied=(("值班", "on"), ("下班", "off"))),
    CommandSpec(name="overdue", english=("overdue",), chinese=("超时",), takes_args=False),
    CommandSpec(name="extend", english=("extend",), chinese=("延期",)),
    CommandSpec(name="approve", english=("approve",), chinese=("批准", "同意延期")),
    CommandSpec(name="refuse", english=("refuse",), chinese=("驳回", "不同意延期")),
    CommandSpec(name="return", english=("return",), chinese=("退单", "退回")),
    CommandSpec(name="reroute", english=("reroute",), chinese=("改派",)),
    CommandSpec(name="link", english=("link",), chinese=("认证",)),
    CommandSpec(name="bind", english=("bind",), chinese=("绑定",)),
    CommandSpec(name="notice", english=("notice",), chinese=("通知", "发通知")),
    CommandSpec(name="notices", english=("notices",), chinese=("通知列表",), takes_args=False),
    CommandSpec(name="cancel_notice", english=("cancel_notice", "unnotice"),
                chinese=("取消通知", "撤回通知")),
    CommandSpec(name="ack", english=("ack",), chinese=("收到", "收到了", "已收到")),
    CommandSpec(name="stats", english=("stats", "statistics"), chinese=("统计", "统计图"),
                implied=(("统计图", "图"),)),
)

SPECS = {spec.name: spec for spec in COMMANDS}
_BY_WORD: dict[str, CommandSpec] = {}
for _spec in COMMANDS:
    for _word in (*_spec.english, *_spec.chinese):
        _BY_WORD[_word.lower()] = _spec
_KEYWORDS = sorted(((kw, spec) for spec in COMMANDS for kw in spec.chinese),
                   key=lambda item: -len(item[0]))
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


def parse(text: str, bot_username: str | None = None) -> ParsedCommand | UnknownCommand | None:
    """Parse one message; ``None`` means ordinary chat, not meant for the bot."""
    text = clean_text(text)
    if not text:
        return None
    head = unicodedata.normalize("NFKC", text[:1])
    if head == "/":
        return _parse_slash(text, bot_username)
    for keyword, spec in _KEYWORDS:
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


def _parse_slash(text: str, bot_username: str | None) -> ParsedCommand | UnknownCommand | None:
    match = _SLASH.match(text[1:])
    assert match is not None  # the pattern matches any string
    first, rest = match[1], match[2]
    word, _, addressee = unicodedata.normalize("NFKC", first).partition("@")
    if addressee and bot_username and addressee.lower() != bot_username.lower():
        return None  # a command for another bot in the same group
    spec = _BY_WORD.get(word.lower())
    if spec is None:
        if not word:
            return None
        return UnknownCommand(word="/" + word[:32], addressed=bool(addressee))
    args = rest.strip()
    implied = dict(spec.implied).get(word)
    if implied is not None:
        args = f"{implied} {args}".strip()
    return ParsedCommand(name=spec.name, args=args, word="/" + word.lower())


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

#: commands whose first argument is a number (a case, a notice, an offer): a typo of their
#: word is recognised only when a number follows, so ordinary words are not taken for one
_NUMBERED = frozenset({"status", "cancel", "confirm", "reopen", "rate", "claim", "note",
                       "done", "transfer", "escalate", "extend", "approve", "refuse",
                       "return", "reroute", "file", "cancel_notice"})
#: … of which these take the number alone: "查看 1 号楼的灯坏了" is a report, not 查询 1
_NUMBER_ONLY = frozenset({"status", "confirm", "claim", "approve", "file", "cancel_notice"})
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
    if not spec.takes_args or spec.name not in _NUMBERED | {"link"}:
        return not rest.strip(_TRAILING)
    if spec.name == "link":
        return bool(_LINK_CODE.match(rest))
    number, after = split_case_number(rest)
    return number is not None and not (spec.name in _NUMBER_ONLY and after.strip(_TRAILING))


def suggest(text: str, allowed: Callable[[str], bool] = lambda name: True) -> list[Suggestion]:
    """Commands ``text`` probably meant (``认岭 1`` → ``认领 1``, ``/cliam 1`` →
    ``/claim 1``), for the answer to a message that is no command; at most three, and
    only of commands ``allowed`` (by name) for the person."""
    text = clean_text(text)
    slash = unicodedata.normalize("NFKC", text[:1]) == "/"
    body = text[1:] if slash else text
    match = _HEAD.match(body)
    if not match:
        return []
    typed, rest = match[0], _strip_separator(body[match.end():])
    typed_lower = typed.lower()
    found: dict[str, tuple[int, Suggestion]] = {}
    for spec in COMMANDS:
        if not allowed(spec.name):
            continue
        words = spec.english if (slash or typed.isascii()) else spec.chinese
        for word in words:
            if word == typed_lower and slash:
                continue  # a known slash command parses; nothing to suggest
            # A slash says "command" already; a bare word must also be followed by what
            # the command takes before it is taken for one.
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
