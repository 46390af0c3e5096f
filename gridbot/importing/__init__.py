"""``gridbot import``: the org, its staff and its households from the office's sheets.

Where things go. The configuration file stays the one source of truth for the org tree,
the staff and the rosters (it is synchronised into the database at every start), so
the import **writes them into the configuration file**, between two marker lines that
it owns::

    # >>> gridbot import …
    [[communities]] …
    # <<< gridbot import

Everything outside the markers is left exactly as it was. Households (住户台账) are
not configuration (a subdistrict has tens of thousands): they go into the database, in
one transaction.

A sheet describes whole communities. Each of its tables replaces, for every community
it mentions, what was imported there before: the org table the community's grids and
micro-grids, the staff table its people and rosters, the households table its
households. Other communities are left alone, so each community office may import its
own sheet. Re-importing the same sheet changes nothing.

Nothing is written unless every row is right and the resulting configuration passes
the same checks as ``gridbot check-config``; every problem is reported with its file,
sheet, row and column. ``--dry-run`` shows what would change and writes nothing.

One module per stage:

- :mod:`~gridbot.importing.sheets`: reading the sheets (.xlsx, .xls, .ods, .csv) into tables;
- :mod:`~gridbot.importing.rows`: checking each table's rows;
- :mod:`~gridbot.importing.plan`: planning the changes against the configuration;
- :mod:`~gridbot.importing.toml_block`: writing the configuration's imported block;
- :mod:`~gridbot.importing.apply`: writing to the store (and the file), both or neither;
- :mod:`~gridbot.importing.problems`: what can be wrong, with its file, sheet, row, column.
"""

from gridbot.importing.apply import apply, run_import
from gridbot.importing.plan import Change, Plan, household_scope, plan_import
from gridbot.importing.problems import ImportFailed, Problem, group_problems
from gridbot.importing.rows import ROLE_WORDS, person_id
from gridbot.importing.sheets import REQUIRED, Table, read_tables, stderr_progress
from gridbot.importing.toml_block import BEGIN, END, write_text_atomically

__all__ = [
    "BEGIN", "END", "REQUIRED", "ROLE_WORDS", "Change", "ImportFailed", "Plan", "Problem",
    "Table", "apply", "group_problems", "household_scope", "person_id", "plan_import",
    "read_tables", "run_import", "stderr_progress", "write_text_atomically",
]
