"""Problems found while reading a configuration, gathered before they are worded.

Reading goes on past a problem, so that one run of ``gridbot check-config`` lists them
all. An :class:`Issue` names where (the key's location), the value, and what was
expected as a code with its parameters; :mod:`gridbot.config.wording` turns each into
one line in the configured language (``templates/<locale>/cli/config.j2``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gridbot.settings.schema import KEY, Part

Loc = tuple[Part, ...]

#: what a key can be expected to be: the codes the ``expected`` macro words ("other"
#: carries a message of pydantic's own, for an error no code covers)
EXPECTED = frozenset({
    # shapes
    "required", "table", "tables", "tables_none", "nonempty", "text", "code", "whole_number",
    "one_of", "bool", "unknown_key", "strings", "other",
    # time
    "duration", "time_of_day", "time_of_day_24", "weekdays", "weekdays_none", "spans",
    "spans_overlap", "quiet", "dates", "fractions", "timezone",
    # [gridbot], [storage]
    "secret_length", "storage_url", "sqlite_path", "pg_port", "pg_parts", "pg_schema",
    # the org tree, people, rosters
    "code_unused", "community_ref", "grid_ref", "unit_microgrid", "unit_grid",
    "unit_community", "unit_subdistrict", "id_unused", "name_unused", "person_ref", "staff",
    "microgrid_ref", "roster_unique",
    # policy and the calendar
    "resolve_after_claim", "category_unused", "default_category", "service_name",
    "phone_number", "services", "calendar", "calendar_hours", "calendar_days",
    # platforms
    "webhook_secret", "webhook_url", "microgrid_keys", "app_chat_id", "robot_key", "aes_key",
    "name_pattern",
    # [web]
    "web_path", "public_url",
    # the environment and the file itself
    "env_unset", "env_table", "file_missing", "file_unreadable",
})


@dataclass(frozen=True)
class Issue:
    loc: Loc
    #: the value as written (``MISSING`` for a key left out)
    value: Any
    #: what was expected: a key of the ``expected`` macro in config.j2
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)
    #: the value is a secret: its length is shown, never the value
    secret: bool = False

    def __post_init__(self) -> None:
        if self.code not in EXPECTED:
            raise ValueError(f"no words for the configuration problem {self.code!r}")


class Issues:
    """Every problem found so far, one per key: once a key (or the table holding it) is
    wrong, later problems found at it follow from the first and are left out."""

    def __init__(self) -> None:
        self.found: list[Issue] = []

    def add(self, loc: Sequence[Part], value: Any, code: str, *, secret: bool = False,
            **params: Any) -> None:
        where = tuple(loc)
        if not self.at(where):
            self.found.append(Issue(where, value, code, params, secret))

    def at(self, loc: Sequence[Part]) -> bool:
        """Whether a problem is known at ``loc`` or at a table holding it."""
        where = tuple(loc)
        return any(where[:len(issue.loc)] == issue.loc for issue in self.found)

    def __bool__(self) -> bool:
        return bool(self.found)


def dotted(loc: Sequence[Part]) -> str:
    """``("people", 3, "role")`` as people write it: ``people[3].role``."""
    out = ""
    for part in loc:
        if part == KEY:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
