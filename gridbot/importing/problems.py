"""What is wrong with the sheets: each problem names its file, sheet, row and column."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gridbot.errors import GridbotError


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong with one cell (or row, or file)."""

    file: str
    sheet: str
    row: int | None
    column: str  # the spreadsheet letter, or ""
    header: str
    code: str  # what is wrong, a key of the cli.j2 import_problem macro
    value: str = ""
    extra: str = ""
    #: the file and sheet of the row this one repeats, when that is another table
    other: str = ""


class ImportFailed(GridbotError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = list(problems)



def group_problems(problems: Sequence[Problem], *, at_least: int = 3) -> list[list[Problem]]:
    """The problems with those of one kind in one column of one table together, in the
    order each kind first appears: 48 repeated households make one line, not 48. A kind
    seen fewer than ``at_least`` times stays one line per problem."""
    groups: dict[tuple[str, ...], list[Problem]] = {}
    for p in problems:
        key = (p.file, p.sheet, p.column, p.header, p.code, p.other)
        groups.setdefault(key, []).append(p)
    out: list[list[Problem]] = []
    for p in problems:
        group = groups[(p.file, p.sheet, p.column, p.header, p.code, p.other)]
        if len(group) < at_least or p.row is None:
            out.append([p])
        elif group[0] is p:
            out.append(group)
    return out

