"""Values from the environment: ``env:NAME`` in the file, and ``GRIDBOT_SECTION__KEY``.

Two ways, applied to the file's table tree before it is checked:

* **Overrides.** ``GRIDBOT_TELEGRAM__TOKEN=…`` sets ``[telegram] token``, whatever the
  file says: the name after ``GRIDBOT_`` is the key's path with ``__`` between its parts
  (``GRIDBOT_WECHAT__WORK__SECRET``, ``GRIDBOT_STORAGE__URL``), in any case. Tables only:
  the items of ``[[people]]`` and the like are the file's.
* **References.** A string written ``"env:NAME"`` is the content of variable ``NAME``.
  Those in the platform sections (``[telegram]``, ``[wechat…]``) may be left unread
  (``secrets=False``): they stay :class:`Deferred`, so a command run from cron works
  where no such variable is set.

Either way the value is text: a key that is not text reads it as a TOML value (``8443``,
``true``, ``["mon", "tue"]``). Where each such value came from is kept (``origins``), so
that a message about it names the variable instead of showing what it holds.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, SecretStr

from gridbot.settings.issues import Issues, Loc, dotted
from gridbot.settings.schema import Node, at, is_text

REFERENCE = "env:"
OVERRIDE = "GRIDBOT_"
#: the sections whose ``env:`` references only ``gridbot run`` needs (the platforms', and
#: the token of ``/metrics``)
PLATFORM_SECTIONS = frozenset({"telegram", "wechat", "metrics", "web"})


#: where each value taken from the environment is, and the variable it came from
Origins = dict[Loc, str]


class EnvText(str):
    """Text read from an environment variable (shown by the variable's name only)."""

    variable: str

    def __new__(cls, text: str, variable: str) -> EnvText:
        value = super().__new__(cls, text)
        value.variable = variable
        return value


class Deferred(str):
    """An ``env:NAME`` reference left unread: the text as written, ``env:NAME``."""

    variable: str

    def __new__(cls, written: str) -> Deferred:
        value = super().__new__(cls, written)
        value.variable = written.removeprefix(REFERENCE)
        return value


def is_deferred(value: object) -> bool:
    """Whether a setting's value is a reference left unread (``secrets=False``)."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return isinstance(value, Deferred)


def typed(text: EnvText) -> Any:
    """Environment text as the TOML value it spells; text that is no TOML value stays as
    it is, for the field to refuse or read."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def _value(root: type[BaseModel], loc: Loc, text: EnvText) -> Any:
    """What a key reads from a variable's text: text as it is, anything else as TOML."""
    node = at(root, loc)
    return text if node is None or is_text(node.annotation) else typed(text)


def apply_overrides(data: dict[str, Any], environ: Mapping[str, str],
                    root: type[BaseModel], issues: Issues, origins: Origins) -> None:
    """Put every ``GRIDBOT_SECTION__KEY`` variable into the file's tables."""
    for name in sorted(environ):
        if not name.startswith(OVERRIDE) or "__" not in name:
            continue
        parts = name[len(OVERRIDE):].split("__")
        if not all(parts):
            continue
        node: Node | None = Node(root)
        table = data
        loc: Loc = ()
        for depth, part in enumerate(parts):
            key = _key(node, part, table)
            loc = (*loc, key)
            if depth == len(parts) - 1:
                table[key] = _value(root, loc, EnvText(environ[name], name))
                origins[loc] = name
                break
            inner = table.setdefault(key, {})
            if not isinstance(inner, dict):
                issues.add(loc, EnvText(environ[name], name), "env_table", key=dotted(loc))
                break
            table = inner
            node = node.step(key) if node is not None else None


def _key(node: Node | None, part: str, table: Mapping[str, Any]) -> str:
    """The key a part of a variable's name stands for: field names are lower case; the
    keys of a map (micro-grid codes) are matched to the file's whatever their case."""
    if node is not None and node.is_map:
        return next((k for k in table if k.lower() == part.lower()), part)
    return part.lower()


def resolve_references(data: dict[str, Any], environ: Mapping[str, str],
                       root: type[BaseModel], *, secrets: bool, issues: Issues,
                       origins: Origins) -> list[tuple[str, str]]:
    """Replace each ``"env:NAME"`` with the variable's content (or, for a platform's when
    ``secrets`` is false, with a :class:`Deferred`); return the deferred ones as
    (key, NAME) in file order."""
    deferred: list[tuple[str, str]] = []

    def visit(value: Any, loc: Loc) -> Any:
        if isinstance(value, dict):
            for key in value:
                value[key] = visit(value[key], (*loc, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                value[index] = visit(item, (*loc, index))
        elif isinstance(value, str) and loc not in origins and value.startswith(REFERENCE):
            variable = value.removeprefix(REFERENCE)
            if not secrets and loc and loc[0] in PLATFORM_SECTIONS:
                deferred.append((dotted(loc), variable))
                return Deferred(value)
            if variable not in environ:
                issues.add(loc, value, "env_unset", variable=variable)
                return EnvText("", variable)
            origins[loc] = variable
            return _value(root, loc, EnvText(environ[variable], variable))
        return value

    visit(data, ())
    return deferred
