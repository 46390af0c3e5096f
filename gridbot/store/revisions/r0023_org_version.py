"""0023 org version: rosters and swaps remembered across transactions, safely.

Every report is routed by its micro-grid's roster (the people on it, their shifts and
duty) and the day's shift swaps. Those change rarely (a configuration reload, an import,
a steward going off duty, a swap accepted), yet each report read them again: two of the
eight round trips a report makes to PostgreSQL. ``org_version`` holds one number that
the database's own triggers raise in the transaction of every change to ``rosters``,
``shifts``, ``duty``, ``shift_swaps`` and configured ``people``, whatever code writes
(another worker, ``gridbot import``, a hand-written fix). The speaker's read carries the
number; while it stays the same, a process answers rosters and swaps from what it read
before (:class:`gridbot.store.base.OrgReads`).

Residents the bot meets in a bound group are ``people`` rows too (``auto``): they change
no roster, and raise nothing, so that a storm of newcomers neither clears what is
remembered nor queues every transaction behind one row.
"""

from alembic import op

from gridbot.store.migrating import record

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_TABLE = "CREATE TABLE org_version (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)"
_FIRST = "INSERT INTO org_version (id, n) VALUES (1, 0)"
_BUMP = "UPDATE org_version SET n = n + 1 WHERE id = 1"
#: tables whose every change raises the number
_ALWAYS = ("rosters", "shifts", "duty", "shift_swaps")
#: when a change to ``people`` raises it: the row is not an auto resident, before or after
_PEOPLE = {"INSERT": "NOT NEW.auto", "UPDATE": "NOT OLD.auto OR NOT NEW.auto",
           "DELETE": "NOT OLD.auto"}

SQLITE = [
    *(f"CREATE TRIGGER {table}_org_{event.lower()} AFTER {event} ON {table}"
      f" BEGIN {_BUMP}; END"
      for table in _ALWAYS for event in ("INSERT", "UPDATE", "DELETE")),
    *(f"CREATE TRIGGER people_org_{event.lower()} AFTER {event} ON people"
      f" WHEN {when} BEGIN {_BUMP}; END" for event, when in _PEOPLE.items()),
]

POSTGRESQL = [
    f"""CREATE FUNCTION org_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_BUMP};
    RETURN NULL;
END $$""",
    # SQLite's names (tests/test_postgres.py compares them); once a statement, not a row
    *(f"CREATE TRIGGER {table}_org_{event.lower()} AFTER {event} ON {table}"
      " FOR EACH STATEMENT EXECUTE FUNCTION org_version_bump()"
      for table in _ALWAYS for event in ("INSERT", "UPDATE", "DELETE", "TRUNCATE")),
    *(f"CREATE TRIGGER people_org_{event.lower()} AFTER {event} ON people FOR EACH ROW"
      f" WHEN ({when}) EXECUTE FUNCTION org_version_bump()"
      for event, when in _PEOPLE.items()),
    "CREATE TRIGGER people_org_truncate AFTER TRUNCATE ON people"
    " FOR EACH STATEMENT EXECUTE FUNCTION org_version_bump()",
]


def upgrade() -> None:
    bind = op.get_bind()
    op.execute(_TABLE)
    op.execute(_FIRST)
    for statement in SQLITE if bind.dialect.name == "sqlite" else POSTGRESQL:
        op.execute(statement)
    record(bind, 23)
