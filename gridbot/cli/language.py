"""The command line in the office's language: help, argparse's messages, the locale.

``gridbot --help``, each subcommand's help and argparse's own complaints ("缺少这些参数")
follow ``[gridbot] locale`` of the configuration the command will read. The words live
in ``templates/<locale>/cli/args.j2``; the parsers are built without help text and get
it from there, keyed by command and option, so an option added without an entry keeps
whatever help it was given.

argparse translates its own strings through gettext, calling the module's ``_`` and
``ngettext`` when it builds a parser and when it reports; :func:`speaking` points those
two at the locale's table for the time the parser is built and used, which is what a
gettext catalogue would do, without compiled ``.mo`` files.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import tomllib
import unicodedata
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from gridbot.config import LOCALES
from gridbot.paths import template_loader

DEFAULT_LOCALE = "zh-CN"


@cache
def words(locale: str) -> dict[str, dict[str, str]]:
    """The locale's tables from ``cli/args.j2``: ``help`` and ``argparse``."""
    env = jinja2.Environment(
        loader=template_loader(f"{locale}/cli"),
        undefined=jinja2.StrictUndefined)
    module: Any = env.get_template("args.j2").module
    return {"help": dict(module.help), "argparse": dict(module.argparse)}


def peek_locale(argv: Sequence[str], default_config: Path, demo_config: Path) -> str:
    """The locale of the configuration this command line will read, before parsing it.

    Anything unreadable gives the default: the real reading reports the problem later.
    ``GRIDBOT_GRIDBOT__LOCALE`` wins over the file, as it does when the file is read.
    """
    if (wanted := os.environ.get("GRIDBOT_GRIDBOT__LOCALE")) in LOCALES:
        return wanted
    path: Path | None = None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            path = Path(argv[i + 1])
        elif arg.startswith("--config="):
            path = Path(arg.split("=", 1)[1])
    if path is None:
        path = default_config if default_config.exists() else demo_config
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return DEFAULT_LOCALE
    section = data.get("gridbot")
    locale = section.get("locale") if isinstance(section, dict) else None
    return locale if locale in LOCALES else DEFAULT_LOCALE


@contextlib.contextmanager
def speaking(locale: str) -> Iterator[None]:
    """argparse's own strings in ``locale`` while the block runs."""
    table = words(locale)["argparse"]
    # argparse's translation functions are private: typeshed does not declare them
    saved = argparse._, argparse.ngettext  # type: ignore[attr-defined]

    def gettext(message: str) -> str:
        return table.get(message, message)

    def ngettext(singular: str, plural: str, n: int) -> str:
        return gettext(singular if n == 1 else plural)

    argparse._ = gettext  # type: ignore[attr-defined]
    argparse.ngettext = ngettext  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved  # type: ignore[attr-defined]


def localize(parser: argparse.ArgumentParser, locale: str, command: str = "gridbot") -> None:
    """Give ``parser`` and its subcommands their help in ``locale``."""
    helps = words(locale)["help"]
    parser.formatter_class = WideHelpFormatter
    if command in helps:
        parser.description = helps[command]
    for action in parser._actions:
        option = action.option_strings[-1] if action.option_strings else action.dest
        for key in (f"{command}.{option}", f"*.{option}"):
            if key in helps and action.help is not argparse.SUPPRESS:
                action.help = helps[key]
                break
        if isinstance(action, argparse._SubParsersAction):
            # argparse lists a subcommand only if it was given help when added
            listed = {choice.dest: choice for choice in action._choices_actions}
            action._choices_actions = [
                action._ChoicesPseudoAction(name, (), helps.get(name) or getattr(
                    listed.get(name), "help", None) or "")
                for name in action.choices]
            for name, sub in action.choices.items():
                localize(sub, locale, name)


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def wrap(text: str, columns: int) -> list[str]:
    """``text`` in lines of at most ``columns`` terminal columns, cut at spaces between
    Latin words and between any two Chinese characters (textwrap counts characters, so
    Chinese help would run twice as wide as the terminal)."""
    lines: list[str] = []
    line = ""
    for piece in re.findall(r"\s*[\x21-\x7e]+|\s*.", text):
        if line and width(line + piece) > columns:
            lines.append(line)
            line = piece.lstrip()
        else:
            line += piece
    if line:
        lines.append(line)
    return lines


class WideHelpFormatter(argparse.HelpFormatter):
    """argparse's help, wrapped by terminal columns rather than characters."""

    def _format_usage(self, usage: str | None, actions: Any, groups: Any,
                      prefix: str | None) -> str:
        # argparse indents the usage's later lines by the prefix's length in characters;
        # "用法：" takes twice its length on a terminal
        # argparse's private translation function (see speaking())
        prefix = argparse._("usage: ") if prefix is None else prefix  # type: ignore[attr-defined]
        pad = " " * width(prefix)
        return prefix + super()._format_usage(usage, actions, groups, pad)[len(pad):]

    def _split_lines(self, text: str, width: int) -> list[str]:
        return wrap(" ".join(text.split()), width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(indent + line for line in wrap(" ".join(text.split()),
                                                          width - len(indent)))
