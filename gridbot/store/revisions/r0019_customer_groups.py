"""0019 customer groups: the WeCom customer groups (客户群) the stewards own.

One row per group the platform listed or told of: its name, owner, member count and the
micro-grid it is bound to (by a rule or by hand), when it was dismissed, and how many
group-sendings it received in the current month (WeCom's quota, gridbot.customer_groups).
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from gridbot.store.migrating import record

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    instant: sa.types.TypeEngine[Any] = (
        sa.Text() if bind.dialect.name == "sqlite" else sa.DateTime(timezone=True))
    op.create_table(
        "customer_groups",
        sa.Column("platform", sa.Text(), primary_key=True),
        sa.Column("chat_id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False, server_default=""),
        sa.Column("owner_id", sa.Text(), nullable=False, server_default=""),
        sa.Column("members", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("microgrid", sa.Text()),
        sa.Column("bound_by", sa.Text(), nullable=False, server_default=""),
        sa.Column("bound_at", instant),
        sa.Column("seen_at", instant),
        sa.Column("dismissed_at", instant),
        sa.Column("quota_month", sa.Text(), nullable=False, server_default=""),
        sa.Column("quota_used", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("customer_groups_microgrid", "customer_groups", ["microgrid"])
    record(bind, 19)
