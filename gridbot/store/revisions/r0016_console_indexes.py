"""0016 console indexes: the console's board over a large case table.

The board counts a scope's cases per state and lists its open ones by their running
deadline. With 100,000 stored cases (bench/console.py) both read the whole table row by
row; one index on (micro-grid, state, both deadlines, last change) answers the counts, the
overdue count and the order of the first page from the index alone.
"""

from alembic import op

from gridbot.store.migrating import record

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("cases_board", "cases",
                    ["microgrid", "status", "claim_by", "resolve_by", "updated_at"])
    record(op.get_bind(), 16)
