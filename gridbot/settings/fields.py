"""The pieces settings models are made of: the :class:`Section` base and the field types.

A field type reads one value as people write it in TOML ("2h30m", "08:00", ["mon"]) and
refuses anything else with an error whose type is a key of the ``expected`` macro in
``templates/<locale>/cli/config.j2``, the same words in every language the bot speaks.
Each also carries a :class:`Shape`, how the generated reference names its type.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_core.core_schema import ValidationInfo, ValidatorFunctionWrapHandler

from gridbot.durations import parse_duration
from gridbot.policy.workhours import parse_span
from gridbot.settings import schema
from gridbot.settings.environment import Deferred
from gridbot.settings.issues import EXPECTED

#: the days of the week as the configuration writes them, Monday first
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")
OFF = ("", "off")


def expect(code: str, **params: Any) -> PydanticCustomError:
    """The error a field type raises: ``code`` names what was expected."""
    if code not in EXPECTED:
        raise ValueError(f"no words for the configuration problem {code!r}")
    return PydanticCustomError(code, code, params)


@dataclass(frozen=True)
class Shape:
    """How the reference names a field type's values."""

    text: str


class Section(BaseModel):
    """A table of the configuration file: unknown keys are errors, values are final."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False)


class PlatformSection(Section):
    """A platform's table, whose ``env:`` references may be left unread
    (:class:`~gridbot.settings.environment.Deferred`): such a value stands in as written
    (text) or as the default, unchecked, until ``gridbot run`` reads it."""

    @field_validator("*", mode="wrap")
    @classmethod
    def _deferred(cls, value: Any, handler: ValidatorFunctionWrapHandler,
                  info: ValidationInfo) -> Any:
        if isinstance(value, Deferred):
            return deferred_value(cls.model_fields[info.field_name or ""], value)
        return handler(value)


def deferred_value(field: FieldInfo, value: Deferred) -> Any:
    """What a reference left unread stands in for until ``gridbot run`` reads it."""
    if schema.is_text(field.annotation) and not schema.choices(field.annotation):
        return SecretStr(value) if schema.is_secret(field.annotation) else value
    if not field.is_required():
        return field.get_default(call_default_factory=True)
    return 0  # a platform's number (an agent id): unused by commands that defer


def keep_deferred(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """For the values of a map (robots, app chats), which the section's hook does not see."""
    if isinstance(value, Deferred):
        return value
    return handler(value)


def keep_deferred_secret(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if isinstance(value, Deferred):
        return SecretStr(value)
    return handler(value)


# -- text -------------------------------------------------------------------------------------


def _nonempty(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise expect("nonempty")
    return value.strip()


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise expect("text")
    return value.strip()


def _code(value: Any) -> str:
    text = _nonempty(value)
    if not CODE.fullmatch(text):
        raise expect("code")
    return text


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(
            isinstance(v, str) and v.strip() for v in value):
        raise expect("strings")
    return tuple(v.strip() for v in value)


NonEmpty = Annotated[str, BeforeValidator(_nonempty), Shape("text")]
Text = Annotated[str, BeforeValidator(_text), Shape("text, may be empty")]
Code = Annotated[str, BeforeValidator(_code), Shape("code: 1-32 of A-Z a-z 0-9 _ -")]
Strings = Annotated[tuple[str, ...], BeforeValidator(_strings), Shape("list of texts")]
Secret = Annotated[SecretStr, BeforeValidator(_nonempty), Shape("secret text")]
OptionalSecret = Annotated[SecretStr, BeforeValidator(_text), Shape("secret text, may be empty")]


def secret_value(value: SecretStr | str) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


# -- time -------------------------------------------------------------------------------------


def _duration(value: Any) -> timedelta:
    try:
        return parse_duration(value)
    except (ValueError, TypeError):
        raise expect("duration") from None


def _duration_or_off(value: Any) -> timedelta | None:
    return None if value in OFF else _duration(value)


def clock_time(value: Any, *, allow_24: bool) -> time:
    """``"08:00"``; ``"24:00"`` (the end of the day) only where ``allow_24``."""
    text = _nonempty(value)
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if not match or int(match[1]) > 24 or int(match[2]) > 59:
        raise expect("time_of_day")
    hour, minute = int(match[1]), int(match[2])
    if hour == 24:
        if minute or not allow_24:
            raise expect("time_of_day_24")
        return time(23, 59, 59)
    return time(hour, minute)


def _time_or_off(value: Any) -> time | None:
    return None if value in OFF else clock_time(value, allow_24=False)


def _weekdays(value: Any, *, at_least_one: bool = False) -> tuple[int, ...]:
    names = _strings(value)
    if at_least_one and not names:
        raise expect("weekdays_none")
    days = []
    for name in names:
        if name.lower() not in WEEKDAYS:
            raise expect("weekdays", shown=name)
        days.append(WEEKDAYS.index(name.lower()))
    return tuple(days)


def _spans(value: Any) -> tuple[tuple[time, time], ...]:
    spans = []
    for text in _strings(value):
        try:
            span = parse_span(text)
        except ValueError:
            raise expect("spans", shown=text) from None
        if span[0] >= span[1]:
            raise expect("spans", shown=text)
        spans.append(span)
    spans.sort()
    for (_, end), (start, _) in itertools.pairwise(spans):
        if start < end:
            raise expect("spans_overlap")
    return tuple(spans)


def _quiet(value: Any) -> tuple[time, time] | None:
    if not isinstance(value, str):
        raise expect("text")
    if value.strip().lower() in OFF:
        return None
    try:
        return parse_span(value.strip())
    except ValueError:
        raise expect("quiet") from None


def _dates(value: Any) -> frozenset[date]:
    if not isinstance(value, list | tuple):
        raise expect("dates")
    out = set()
    for item in value:
        if isinstance(item, date):  # TOML has dates: extra_holidays = [2027-01-01]
            out.add(item)
            continue
        try:
            out.add(date.fromisoformat(item))
        except (TypeError, ValueError):
            raise expect("dates", shown=item) from None
    return frozenset(out)


def _fractions(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list) or not all(
            isinstance(f, int | float) and not isinstance(f, bool) and 0 < f < 1 for f in value):
        raise expect("fractions")
    return tuple(sorted({float(f) for f in value}))


Duration = Annotated[timedelta, BeforeValidator(_duration), Shape("duration: 15m, 2h, 2h30m, 7d")]
DurationOrOff = Annotated[timedelta | None, BeforeValidator(_duration_or_off),
                          Shape('duration, or "off"')]
StartTime = Annotated[time, BeforeValidator(lambda v: clock_time(v, allow_24=False)),
                      Shape("time of day: 08:00")]
EndTime = Annotated[time, BeforeValidator(lambda v: clock_time(v, allow_24=True)),
                    Shape("time of day: 20:00, or 24:00")]
TimeOrOff = Annotated[time | None, BeforeValidator(_time_or_off), Shape('time of day, or "off"')]
Weekdays = Annotated[tuple[int, ...], BeforeValidator(lambda v: _weekdays(v, at_least_one=True)),
                     Shape("list of weekdays: mon … sun")]
WorkDays = Annotated[tuple[int, ...], BeforeValidator(_weekdays),
                     Shape("list of weekdays: mon … sun")]
Spans = Annotated[tuple[tuple[time, time], ...], BeforeValidator(_spans),
                  Shape("list of spans of the day: 08:30-12:00")]
QuietSpan = Annotated[tuple[time, time] | None, BeforeValidator(_quiet),
                      Shape('span of the day: 22:00-07:00, or "" for none')]
Dates = Annotated[frozenset[date], BeforeValidator(_dates), Shape("list of dates: 2027-01-01")]
Fractions = Annotated[tuple[float, ...], BeforeValidator(_fractions),
                      Shape("list of fractions between 0 and 1")]
