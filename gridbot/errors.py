"""Exceptions, one root split by layer.

    GridbotError
    ├── ConfigError            the configuration file is wrong (names key, value, expectation)
    ├── StoreError             the database could not do what was asked
    ├── PlatformError          a platform refused or failed a call
    └── UserError              a person asked for something we must refuse; carries a template
        ├── PermissionDenied   the speaker's role or scope does not allow it
        ├── NotFound           (also a LookupError) no such case, person or code
        ├── BadArguments       the command's arguments are missing or malformed
        └── InvalidTransition  the case is not in a state that allows it

A UserError is never a bug: the engine renders its template to the speaker and
rolls back whatever the handler had written.
"""

from __future__ import annotations

from typing import Any


class GridbotError(Exception):
    """Root of every error gridbot raises on purpose."""


class ConfigError(GridbotError):
    """The configuration is invalid; the message names the key, value and what was expected."""

    def __init__(self, key: str, value: Any, expected: str, source: str = "") -> None:
        self.key = key
        self.value = value
        self.expected = expected
        self.source = source
        where = f"{source}: " if source else ""
        shown = "(missing)" if value is _MISSING else repr(value)
        super().__init__(f"{where}{key} = {shown}: expected {expected}")


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


_MISSING: Any = _Missing()
MISSING: Any = _MISSING


class StoreError(GridbotError):
    """The store failed; the transaction was rolled back."""


class PlatformError(GridbotError):
    """A platform call failed.

    ``permanent`` failures (bot removed from the chat, user blocked the bot) are not
    retried; others are, after ``retry_after`` seconds when the platform said so.
    """

    def __init__(
        self, reason: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


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
