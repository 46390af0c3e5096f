"""0022 lean case indexes: fewer index entries written with every case.

A new case was written into twelve indexes. Three gave nothing for their cost:

- ``cases_microgrid`` (micro-grid, status) is the first two columns of ``cases_board``,
  which answers every query it did;
- ``cases_incident`` and ``cases_merged_into`` held an entry for every case although
  almost every case has neither: they are only looked up by value (the cases of an
  incident, the cases merged into one), so they now hold only the cases that have one.
  A lookup by value implies the column is not null, and both SQLite and PostgreSQL use
  such a partial index for it.
"""

from alembic import op

from gridbot.store.migrating import record

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX cases_microgrid")
    for column in ("incident", "merged_into"):
        op.execute(f"DROP INDEX cases_{column}")
        op.execute(f"CREATE INDEX cases_{column} ON cases ({column})"
                   f" WHERE {column} IS NOT NULL")
    record(op.get_bind(), 22)
