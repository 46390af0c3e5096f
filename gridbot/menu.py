"""The commands a platform's own menu offers (Telegram's "/" list), per chat kind and
language.

The lists and their one-line descriptions are words, so they live in
``templates/<locale>/bot/menu.j2``; an adapter whose platform has such a menu registers
them when ``gridbot run`` starts (:meth:`gridbot.adapters.base.Adapter.announce_commands`).
Private chats list what a person does alone with the bot (report, follow, claim, the
day's work); groups list what is said in front of the neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2

from gridbot.config import LOCALES
from gridbot.paths import template_loader
from gridbot.render import Renderer

SCOPES = ("private", "group")


@dataclass(frozen=True, kw_only=True)
class CommandMenu:
    """One menu: the commands for one kind of chat in one language."""

    scope: str  # "private" or "group"
    #: None: for everyone whose language has no menu of its own (the configured locale)
    locale: str | None
    #: (English command word, description), in the order shown
    commands: tuple[tuple[str, str], ...]


def menu_words(renderer: Renderer, locale: str) -> dict[str, list[list[str]]]:
    """The locale's ``menu`` table: scope -> [[command, description], …]."""
    env = jinja2.Environment(
        loader=template_loader(f"{locale}/bot", root=renderer.templates_dir),
        undefined=jinja2.StrictUndefined)
    module: Any = env.get_template("menu.j2").module
    return dict(module.menu)


def command_menus(renderer: Renderer) -> list[CommandMenu]:
    """Every menu: each scope for each locale, and each scope without a language."""
    menus = []
    for locale in (None, *LOCALES):
        words = menu_words(renderer, locale or renderer.default_locale)
        for scope in SCOPES:
            menus.append(CommandMenu(scope=scope, locale=locale, commands=tuple(
                (command, description) for command, description in words[scope])))
    return menus
