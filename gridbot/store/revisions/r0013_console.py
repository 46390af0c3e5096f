"""0013 console: the office console's one-time login links and its sessions.

Both keep only a hash of what the browser holds (the link's token, the cookie's session
id), as link codes do, so a copy of the database opens no session.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from gridbot.store.migrating import record

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    # Instants: fixed-width UTC text in SQLite, timestamptz in PostgreSQL (tables.py).
    instant: sa.types.TypeEngine[Any] = (
        sa.Text() if bind.dialect.name == "sqlite" else sa.DateTime(timezone=True))
    op.create_table(
        "web_logins",
        sa.Column("token_hash", sa.Text(), primary_key=True),
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("created_at", instant, nullable=False),
        sa.Column("expires_at", instant, nullable=False),
        sa.Column("used_at", instant),
        sa.Column("via", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("web_logins_person", "web_logins", ["person_id"])
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.Text(), primary_key=True),
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("created_at", instant, nullable=False),
        sa.Column("expires_at", instant, nullable=False),
        sa.Column("seen_at", instant, nullable=False),
        sa.Column("ended_at", instant),
        sa.Column("agent", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("web_sessions_person", "web_sessions", ["person_id"])
    # The console's board sorts a scope's cases by their next deadline.
    op.create_index("cases_microgrid_updated", "cases", ["microgrid", "updated_at"])
    record(bind, 13)
