"""Problems worded for people: one line each, in the configuration's language.

pydantic's errors become :class:`~gridbot.settings.issues.Issue` values (the key, the
value, what was expected); each issue becomes a line like
``people[3].role = 'stewart': expected one of 'resident', …`` from the macros of
``templates/<locale>/cli/config.j2``. A secret's value is never shown (its length is),
nor is a value that came from the environment (the variable's name is).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

import jinja2
from pydantic import BaseModel, ValidationError

from gridbot.errors import MISSING, ConfigError, ConfigProblem
from gridbot.paths import template_loader
from gridbot.settings import schema
from gridbot.settings.environment import Deferred, EnvText
from gridbot.settings.issues import EXPECTED, Issue, Issues, Loc, dotted

#: pydantic's own error types that need nothing more, as codes of the ``expected`` macro
_PYDANTIC = {
    "missing": "required",
    "model_type": "table",
    "model_attributes_type": "table",
    "dict_type": "table",
    "bool_type": "bool",
    "bool_parsing": "bool",
    "string_type": "nonempty",
}
#: a whole number's type or bounds: worded with the field's bounds
_NUMBER_ERRORS = {"int_type", "int_parsing", "int_from_float", "greater_than_equal",
                  "less_than_equal", "greater_than", "less_than"}
_TOML_WHERE = re.compile(r"^(?P<detail>.*) \((?:at line (?P<line>\d+), column (?P<column>\d+)"
                         r"|at end of document)\)$", re.DOTALL)


def add_validation_errors(error: ValidationError, root: type[BaseModel], prefix: Loc,
                          issues: Issues) -> None:
    """Each of pydantic's errors for the table at ``prefix`` as an issue.

    A misspelt key is one problem, not two: the key it stands for is not also reported
    as missing when "did you mean" names it.
    """
    errors = error.errors(include_url=False)
    meant = {(*prefix, *e["loc"][:-1], suggestion) for e in errors
             if e["type"] == "extra_forbidden" and
             (suggestion := unknown_key(root, (*prefix, *e["loc"]))["suggestion"])}
    for found in errors:
        loc: Loc = (*prefix, *found["loc"])
        if found["type"] == "missing" and loc in meant:
            continue
        node = schema.at(root, loc)
        params = dict(found.get("ctx") or {})
        value = params.pop("shown", found["input"])
        kind = found["type"]
        if kind == "missing":
            value = MISSING
        if kind in _NUMBER_ERRORS:
            lo, hi = schema.bounds(node.field if node else None)
            code, params = "whole_number", {"lo": lo, "hi": hi}
        elif kind == "extra_forbidden":
            code, params = "unknown_key", unknown_key(root, loc)
        elif kind == "literal_error":
            code = "one_of"
            params = {"options": schema.choices(node.annotation) if node else ()}
        elif kind == "list_type":
            code, params = "tables", {"key": dotted(loc)}
        elif kind in _PYDANTIC:
            code = _PYDANTIC[kind]
        elif kind in EXPECTED:  # one of ours (fields.expect): the type is the code
            code = kind
        else:
            code, params = "other", {"message": found["msg"]}
        if loc and loc[-1] == schema.KEY:  # a map's own key was refused: show the key
            loc, value = loc[:-1], loc[-2]
            secret = False
        else:
            secret = node is not None and schema.is_secret(node.annotation)
        issues.add(loc, value, code, secret=secret, **params)


def unknown_key(root: type[BaseModel], loc: Loc) -> dict[str, Any]:
    """The keys allowed where ``loc`` is, and the one the writer probably meant."""
    table = schema.at(root, loc[:-1])
    model = table.model if table is not None else None
    known = schema.keys(model) if model is not None else []
    return {"known": known, "suggestion": did_you_mean(str(loc[-1]), known)}


def did_you_mean(written: str, known: Sequence[str]) -> str | None:
    """The known key closest to a misspelt one, if one is close enough."""
    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(written.lower(), list(lowered), n=1, cutoff=0.6)
    if close:
        return lowered[close[0]]
    starts = [k for k in known if len(written) >= 3 and k.startswith(written.lower())]
    return starts[0] if len(starts) == 1 else None


# -- words ----------------------------------------------------------------------------------------


@cache
def _macros(locale: str) -> Any:
    env = jinja2.Environment(
        loader=template_loader(f"{locale}/cli"),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("config.j2").module


def _one_line(text: str) -> str:
    """A macro's text on one line (values are shown with repr, so keep no line breaks)."""
    return str(text).strip().replace("\n", " ")


def raw_at(data: Any, loc: Loc) -> Any:
    """The value at ``loc`` in the file's tables as read (before the models)."""
    for part in loc:
        found = (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and part < len(data))
        if not found:
            return MISSING
        data = data[part]
    return data


def _safe(value: Any) -> Any:
    """The value as it may be shown: text from the environment by its variable's name."""
    if isinstance(value, EnvText):
        return f"env:{value.variable}"
    if isinstance(value, Deferred):
        return str(value)
    if isinstance(value, dict):
        return {k: _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


def problem(issue: Issue, origins: Mapping[Loc, str], locale: str,
            source: str) -> ConfigProblem:
    """One issue as one line in ``locale``; ``origins`` tells the values taken from the
    environment (by location: the variable)."""
    words = _macros(locale)
    key = dotted(issue.loc)
    expected = _one_line(words.expected(issue.code, issue.params))
    variable = origins.get(issue.loc)
    value = issue.value
    if variable is not None and issue.code != "env_unset":
        value = f"env:{variable}"
        expected = _one_line(words.in_environment(expected, variable))
        shown = repr(value)
    elif value is MISSING:
        shown = _one_line(words.missing())
    elif issue.secret and isinstance(value, str) and value:
        value = shown = _one_line(words.hidden(len(value)))
    else:
        value = _safe(value)
        shown = repr(value)
    text = _one_line(words.line(source, key, shown, expected, issue.code))
    return ConfigProblem(key, value, expected, text)


def config_error(issues: Iterable[Issue], origins: Mapping[Loc, str], locale: str,
                 source: str) -> ConfigError:
    return ConfigError.collected([problem(i, origins, locale, source) for i in issues], source)


def syntax_error(message: str, text: str, locale: str, source: str) -> ConfigError:
    """tomllib's complaint as ``file:line:column: …``."""
    found = _TOML_WHERE.match(message)
    detail = found["detail"] if found else message
    if found and found["line"]:
        line, column = int(found["line"]), int(found["column"])
    else:  # at the end of the document
        lines = text.split("\n")
        line, column = len(lines), len(lines[-1]) + 1
    words = _macros(locale)
    expected = _one_line(words.toml(detail))
    line_text = _one_line(words.syntax(source, line, column, expected))
    return ConfigError.collected([ConfigProblem("(file)", "", expected, line_text)], source)


def file_error(key: str, value: str, code: str, locale: str, **params: Any) -> ConfigError:
    """A file that cannot be read at all: missing, or not UTF-8."""
    return config_error([Issue((key,), value, code, params)], {}, locale, "")
