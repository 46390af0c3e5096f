"""The configuration reference, made from the models: every key with its type, default,
bounds and meaning, and the environment variable that overrides it.

    python -m gridbot.config.reference > docs/configuration.md

A test checks that the committed file is what this prints, so a key added to a model
without a description, or a description changed, shows up in review.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Iterator, Mapping
from datetime import date, time, timedelta
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from gridbot.config.sections import ConfigFile
from gridbot.durations import format_duration
from gridbot.settings import schema
from gridbot.settings.environment import OVERRIDE, REFERENCE
from gridbot.settings.fields import Shape

INTRO = f"""\
# Configuration reference

<!-- Made by `python -m gridbot.config.reference > docs/configuration.md` from the models
in gridbot/config/sections.py and gridbot/adapters/*/settings.py: edit those, not this. -->

gridbot reads one TOML file: `gridbot.toml` in the current folder, or the one `--config`
names. `config.example.toml` shows every key below with a small sample org, and
`gridbot init` writes a starter file for your own. `gridbot check-config` checks a file
and lists every problem at once, one line each, in the file's own language
(`[gridbot] locale`):

    gridbot.toml: people[3].role = 'stewart': expected one of 'resident', 'steward', …
    gridbot.toml: gridbot.timezon = 'UTC': expected no such key here (did you mean 'timezone'?); …
    gridbot.toml:57:8: expected valid TOML (Invalid value)

A secret's value is never shown in a message (its length is), nor is a value taken from
the environment (the variable's name is).

## Values from the environment

* **`{REFERENCE}NAME`**: any text value written as `"{REFERENCE}NAME"` is the content of the
  environment variable `NAME`; this is how tokens and passwords should be given. Those of
  `[telegram]` and `[wechat…]` are only read by `gridbot run`, so the other commands
  (backups, reports, imports from cron) work where they are not set; `gridbot
  check-config` names each one missing (an error with `--strict`).
* **`{OVERRIDE}SECTION__KEY`**: a variable named for a key, with `__` between the parts
  of its path, sets that key whatever the file says: `{OVERRIDE}TELEGRAM__TOKEN`,
  `{OVERRIDE}STORAGE__URL`, `{OVERRIDE}WECHAT__WORK__SECRET`,
  `{OVERRIDE}WECHAT__ROBOTS__M01`. The table below gives each key's variable. A
  value that is not text is read as TOML: `{OVERRIDE}HTTP__PORT=8443`,
  `{OVERRIDE}CALENDAR__WORK_DAYS='["mon", "tue"]'`. Keys inside arrays of tables
  (`[[people]]`, `[[rosters]]`, …) cannot be set this way, and a variable that names no
  key is an error, as a misspelt key in the file is.

Durations are written `15m`, `2h`, `2h30m`, `7d`; times of day `08:00`; spans of the
day `08:30-12:00`; dates `2027-01-01`. Codes (of units, people, categories) are 1-32
letters, digits, `-` and `_`.
"""


def render() -> str:
    """The whole reference, as Markdown."""
    out = [INTRO]
    for key, field in schema.fields(ConfigFile):
        out.extend(_table((key,), field, array=_is_array(field)))
    return "\n".join(out).rstrip() + "\n"


def _table(path: tuple[str, ...], field: FieldInfo, *, array: bool, depth: int = 2,
           in_array: bool = False, alike: bool = False) -> Iterator[str]:
    """A table's heading, what it is for, its keys, then the tables inside it."""
    model = _model(field)
    if model is None:
        return
    title = ".".join(path)
    yield "#" * min(depth, 4) + (f" [[{title}]]" if array else f" [{title}]")
    yield ""
    about = inspect.getdoc(model) if "__doc__" in vars(model) and model.__doc__ else None
    for text in (about, None if about or alike else field.description):
        if text:
            yield _sentence(text)
            yield ""
    if array:
        yield f"An array of tables: one `[[{title}]]` table per item."
        yield ""
    in_array = in_array or array
    rows = [(key, sub) for key, sub in schema.fields(model) if _model(sub) is None]
    if rows:
        yield "| Key | Type | Default | Meaning | Environment |"
        yield "| --- | --- | --- | --- | --- |"
        for key, sub in rows:
            variable = "—" if in_array else _variable((*path, key), sub)
            yield (f"| `{key}` | {_cell(_type(sub))} | {_cell(_default(sub))} | "
                   f"{_cell(sub.description or '')} | {variable} |")
        yield ""
    tables = [(key, sub) for key, sub in schema.fields(model) if _model(sub) is not None]
    placeholder = getattr(model, "alike", None)
    if placeholder and tables:
        # Alike tables (levels 1-3, the priorities): one entry stands for all of them.
        yield f"`<{placeholder}>` below is one of " + ", ".join(f"`{k}`" for k, _ in tables) + "."
        yield ""
        tables = [(f"<{placeholder}>", tables[0][1])]
    for key, sub in tables:
        yield from _table((*path, key), sub, array=_is_array(sub), depth=depth + 1,
                          in_array=in_array, alike=bool(placeholder))


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def key_paths(model: type[BaseModel] = ConfigFile,
              path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key of the models, as a path of table names; alike tables (levels, the
    priorities of a window override) as one, named ``*``."""
    placeholder = getattr(model, "alike", None)
    for key, field in schema.fields(model):
        inner = _model(field)
        if inner is None:
            yield (*path, key)
        elif not placeholder:
            yield from key_paths(inner, (*path, key))
        elif key == schema.keys(model)[0]:
            yield from key_paths(inner, (*path, "*"))


def key_pattern(parts: tuple[str, ...]) -> tuple[str, ...] | None:
    """A key as a file writes it (``policy.levels.3.windows.normal.claim_within``,
    ``wechat.robots.M01``) as :func:`key_paths` names it; None when the models have no
    such key."""
    model: type[BaseModel] | None = ConfigFile
    out: list[str] = []
    for index, part in enumerate(parts):
        field = schema.field_by_key(model, part) if model is not None else None
        if model is None or field is None:
            return None
        inner = _model(field)
        out.append("*" if getattr(model, "alike", None) and inner is not None else part)
        if inner is None:  # a value: what follows is a map's own keys
            last = index == len(parts) - 1
            return tuple(out) if last or schema.Node(field.annotation).is_map else None
        model = inner
    return tuple(out)


def _model(field: FieldInfo) -> type[BaseModel] | None:
    node = schema.Node(field.annotation, field)
    if node.model is not None:
        return node.model
    for member in schema.members(field.annotation):
        if get_origin(member) is list:
            return schema.Node(get_args(member)[0]).model
    return None


def _is_array(field: FieldInfo) -> bool:
    return any(get_origin(m) is list for m in schema.members(field.annotation))


def _variable(path: tuple[str, ...], field: FieldInfo) -> str:
    if schema.Node(field.annotation, field).is_map:
        path = (*path, "<key>")
    return "`" + OVERRIDE + "__".join(p.upper() for p in path) + "`"


def _shape(annotation: Any, metadata: list[Any]) -> str | None:
    """The :class:`Shape` given with a field's type, if any (also inside ``… | None``)."""
    for item in metadata:
        if isinstance(item, Shape):
            return item.text
    if get_origin(annotation) is Annotated:
        return _shape(get_args(annotation)[0], list(annotation.__metadata__))
    if get_origin(annotation) in (Union, types.UnionType):
        for member in get_args(annotation):
            if (found := _shape(member, [])) is not None:
                return found
    return None


def _type(field: FieldInfo) -> str:
    found = _shape(field.annotation, field.metadata)
    if found:
        return found
    for member in schema.members(field.annotation):
        if get_origin(member) is Literal:
            return "one of " + ", ".join(f'"{a}"' for a in get_args(member))
        if member is bool:
            return "true or false"
        if member is int:
            lo, hi = schema.bounds(field)
            return f"whole number, {lo} to {hi}"
        if member is SecretStr:
            return "secret text"
        if get_origin(member) is dict:
            value = get_args(member)[1]
            shape = _shape(value, list(getattr(value, "__metadata__", ())))
            return f"table: micro-grid code = {shape or 'text'}"
    return "text"


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    return _toml(field.get_default(call_default_factory=True))


def _toml(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, timedelta):
        return f'"{format_duration(value)}"'
    if isinstance(value, time):
        return f'"{value:%H:%M}"'
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple | frozenset):
        items = [_toml(v) for v in value]
        if len(items) > 8:
            return "[" + ", ".join(items[:6]) + f", … ({len(items)} in all)]"
        return "[" + ", ".join(items) + "]"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


if __name__ == "__main__":
    sys.stdout.write(render())
