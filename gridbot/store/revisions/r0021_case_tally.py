"""0021 case tally: the board's counts per state kept as cases change, not counted.

Counting a scope's cases per state read every entry of the scope in the ``cases_board``
index (100,000 stored cases: half the board's time). ``case_tally`` holds one row per
(micro-grid, status) with its number of cases, kept by triggers on ``cases`` in the
transaction of every insert, move between micro-grids or states, and delete, whatever
code writes the row (the repositories, ``gridbot migrate``'s COPY, a restore, a
hand-written fix): the database holds the truth and a restart loses nothing. This
revision creates the triggers first (on PostgreSQL that locks the table against writers
until it commits), then counts the cases already there.

On PostgreSQL a case moving between two states updates both rows in a fixed order, so
two transactions moving cases opposite ways wait for each other instead of deadlocking.
Cases of one micro-grid and state written at once by two transactions take turns on that
row until the first commits (a case write is a short transaction). A later revision that
rebuilds ``cases`` on SQLite (a batch ALTER copies it into a new table) must create the
SQLite triggers again: dropping the table drops them (the tally tests would fail).

The partial index ``cases_board_claimed`` finds the claimed cases past their resolve
deadline by a range scan (``cases_board`` does that for the unclaimed ones by claim
deadline), and lists them in that order. ``cases_assignee`` grows from (assignee, status)
to cover what the board asks of the cases a person holds outside her micro-grids (their
micro-grid, deadlines and last change): a steward's page read every case she ever held,
row by row, to find the few elsewhere.
"""

from alembic import op

from gridbot.store.migrating import record

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_TABLE = """CREATE TABLE case_tally (
    microgrid TEXT NOT NULL,
    status    TEXT NOT NULL,
    n         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (microgrid, status)
)"""

_ADD = ("INSERT INTO case_tally (microgrid, status, n) VALUES (NEW.microgrid, NEW.status, 1)"
        " ON CONFLICT (microgrid, status) DO UPDATE SET n = case_tally.n + 1")
_TAKE = "UPDATE case_tally SET n = n - 1 WHERE microgrid = OLD.microgrid AND status = OLD.status"

SQLITE = (
    f"CREATE TRIGGER case_tally_insert AFTER INSERT ON cases BEGIN {_ADD}; END",
    "CREATE TRIGGER case_tally_update AFTER UPDATE OF microgrid, status ON cases"
    " WHEN OLD.microgrid IS NOT NEW.microgrid OR OLD.status IS NOT NEW.status"
    f" BEGIN {_TAKE}; {_ADD}; END",
    f"CREATE TRIGGER case_tally_delete AFTER DELETE ON cases BEGIN {_TAKE}; END",
)

POSTGRESQL = (
    f"""CREATE FUNCTION case_tally_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_ADD};
    ELSIF TG_OP = 'DELETE' THEN
        {_TAKE};
    ELSE
        -- the two rows in key order: opposite moves wait, never deadlock
        IF (OLD.microgrid, OLD.status) < (NEW.microgrid, NEW.status) THEN
            {_TAKE};
            {_ADD};
        ELSE
            {_ADD};
            {_TAKE};
        END IF;
    END IF;
    RETURN NULL;
END $$""",
    """CREATE FUNCTION case_tally_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM case_tally;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER case_tally_insert AFTER INSERT ON cases"
    " FOR EACH ROW EXECUTE FUNCTION case_tally_count()",
    "CREATE TRIGGER case_tally_update AFTER UPDATE OF microgrid, status ON cases FOR EACH ROW"
    " WHEN (OLD.microgrid IS DISTINCT FROM NEW.microgrid"
    " OR OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION case_tally_count()",
    "CREATE TRIGGER case_tally_delete AFTER DELETE ON cases"
    " FOR EACH ROW EXECUTE FUNCTION case_tally_count()",
    "CREATE TRIGGER case_tally_truncate AFTER TRUNCATE ON cases"
    " FOR EACH STATEMENT EXECUTE FUNCTION case_tally_clear()",
)

_BACKFILL = ("INSERT INTO case_tally (microgrid, status, n)"
             " SELECT microgrid, status, COUNT(*) FROM cases GROUP BY microgrid, status")


def upgrade() -> None:
    bind = op.get_bind()
    op.execute(_TABLE)
    for statement in SQLITE if bind.dialect.name == "sqlite" else POSTGRESQL:
        op.execute(statement)
    op.execute(_BACKFILL)
    op.execute("CREATE INDEX cases_board_claimed ON cases (microgrid, resolve_by, updated_at)"
               " WHERE status = 'claimed'")
    op.execute("DROP INDEX cases_assignee")
    op.execute("CREATE INDEX cases_assignee ON cases"
               " (assignee_id, status, microgrid, claim_by, resolve_by, updated_at)")
    record(bind, 21)
