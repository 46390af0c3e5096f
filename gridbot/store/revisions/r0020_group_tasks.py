"""0020 group tasks: a notice's group-sendings into WeCom customer groups (客户群群发).

One row per notice, owner and micro-grid: the groups it names, WeCom's ``msgid``, where
it stands, whether the owner was told, the confirmation deadline and when the worker next
makes, asks about or reminds of it (gridbot.group_tasks). The per-group results are the
notice's deliveries (new statuses ``waiting``, ``not_sent``, ``over_quota``: the status
column is free text, so it needs no change).
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from gridbot.store.migrating import record

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    instant: sa.types.TypeEngine[Any] = (
        sa.Text() if bind.dialect.name == "sqlite" else sa.DateTime(timezone=True))
    op.create_table(
        "group_tasks",
        sa.Column("notice_id", sa.BigInteger(), primary_key=True),
        sa.Column("platform", sa.Text(), primary_key=True),
        sa.Column("owner_id", sa.Text(), primary_key=True),
        sa.Column("microgrid", sa.Text(), primary_key=True),
        sa.Column("person_id", sa.Text()),
        sa.Column("chat_ids", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("msgid", sa.Text(), nullable=False, server_default=""),
        sa.Column("error", sa.Text(), nullable=False, server_default=""),
        sa.Column("told", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", instant, nullable=False),
        sa.Column("deadline", instant, nullable=False),
        sa.Column("next_at", instant),
        sa.Column("remind_at", instant),
        sa.Column("reminded_at", instant),
        sa.Column("confirmed_at", instant),
    )
    op.create_index("group_tasks_next", "group_tasks", ["next_at"])
    op.create_index("group_tasks_remind", "group_tasks", ["remind_at"])
    record(bind, 20)
