"""Exceptions, one root split by layer.

    GridbotError
    ├── ConfigError            the configuration file is wrong (names key, value, expectation)
    ├── OptionError            a command-line option's value is wrong (names option and value)
    ├── StoreError             the database could not do what was asked
    │   ├── StoreConflict      another transaction got in the way; running it again is safe
    │   └── StoreBusy          the database stayed locked too long; try again a little later
    ├── PlatformError          a platform refused or failed a call (or did not answer)
    └── UserError              a person asked for something we must refuse; carries a template
        ├── PermissionDenied   the speaker's role or scope does not allow it
        ├── NotFound           (also a LookupError) no such case, person or code
        ├── BadArguments       the command's arguments are missing or malformed
        └── InvalidTransition  the case is not in a state that allows it

A UserError is never a bug: the engine renders its template to the speaker and
rolls back whatever the handler had written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class GridbotError(Exception):
    """Root of every error gridbot raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in the configuration: the key, the value as it may be shown (a
    secret never is), what was expected, and ``text``, the whole line in the language
    the configuration asks for."""

    key: str
    value: Any
    expected: str
    text: str


class ConfigError(GridbotError):
    """The configuration is invalid; the message names the key, value and what was expected.

    Reading a file reports every problem at once, one line each (:attr:`problems`); the
    attributes ``key``, ``value`` and ``expected`` are those of the first.
    """

    def __init__(self, key: str, value: Any, expected: str, source: str = "", *,
                 problems: Sequence[ConfigProblem] = ()) -> None:
        if not problems:
            where = f"{source}: " if source else ""
            shown = "(missing)" if value is _MISSING else repr(value)
            problems = (ConfigProblem(key, value, expected, f"{where}{key} = {shown}: "
                                                            f"expected {expected}"),)
        self.key = key
        self.value = value
        self.expected = expected
        self.source = source
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        super().__init__("\n".join(problem.text for problem in self.problems))

    @classmethod
    def collected(cls, problems: Sequence[ConfigProblem], source: str = "") -> ConfigError:
        """One error for several problems, each already worded."""
        first = problems[0]
        return cls(first.key, first.value, first.expected, source, problems=problems)


class OptionError(GridbotError):
    """A value given on the command line is wrong: not a configuration error.

    ``expected`` is a key of the ``bad_option`` macro in ``cli.j2``, which says in the
    configured language what the option takes; ``detail`` fills it in where needed.
    """

    def __init__(self, option: str, value: Any, expected: str, detail: str = "") -> None:
        self.option = option
        self.value = value
        self.expected = expected
        self.detail = detail
        super().__init__(f"{option} = {value!r}: expected {expected} {detail}".rstrip())


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


_MISSING: Any = _Missing()
MISSING: Any = _MISSING


class StoreError(GridbotError):
    """The store failed; the transaction was rolled back."""


class StoreConflict(StoreError):
    """Two transactions collided (a deadlock, a serialization failure, a unique key taken
    meanwhile) and this one was rolled back; the work may simply be run again.

    Only a store that runs transactions side by side (PostgreSQL) raises it.
    """


class StoreBusy(StoreError):
    """The database stayed locked by someone else (another process, a backup, an admin's
    shell) for longer than the store waits, and the transaction was rolled back whole.

    Transient: nothing was written, so the work may be run again once the lock is gone,
    after a pause (unlike a :class:`StoreConflict`, running it again at once would only
    wait on the same lock). SQLite raises it ("database is locked").
    """


class PlatformError(GridbotError):
    """A platform call failed.

    ``permanent`` failures (bot removed from the chat, user blocked the bot) are not
    retried; others are, after ``retry_after`` seconds when the platform said so (a
    pause of the whole platform: the message itself did not fail).
    ``unreachable`` (implies permanent) says the chat itself refuses the bot, not just
    this message: it is recorded against the chat, and people are no longer sought there.
    ``uncertain``: the request left and no answer came back in time (a read timeout), so
    the message may have arrived; it must not be repeated blindly (a notice delivery is
    marked uncertain instead). ``outage``: the platform could not be reached at all (the
    connection was refused or never made), so nothing arrived and every other message
    would fail the same way: the whole platform waits and is tried again later.
    """

    def __init__(
        self, reason: str, *, permanent: bool = False, retry_after: float | None = None,
        unreachable: bool = False, uncertain: bool = False, outage: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent or unreachable
        self.retry_after = retry_after
        self.unreachable = unreachable
        self.uncertain = uncertain and not self.permanent
        self.outage = outage and not (self.permanent or self.uncertain)


class UserError(GridbotError):
    """A refusal shown to the speaker, rendered from ``template`` with ``context``."""

    template = "error_generic"

    def __init__(self, template: str | None = None, **context: Any) -> None:
        if template is not None:
            self.template = template
        self.context = context
        super().__init__(f"{self.template} {context}")


class PermissionDenied(UserError):
    template = "error_permission"


class NotFound(UserError, LookupError):
    template = "error_not_found"


class BadArguments(UserError):
    template = "error_usage"


class InvalidTransition(UserError):
    template = "error_transition"
