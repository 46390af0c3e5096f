"""0018 notice page acks: 收到 tapped on a notice's page.

Residents of ordinary WeChat groups (where no bot hears anyone) acknowledge a forwarded
notice on its page under their micro-grid's link. One row per person per notice (a second
tap counts nothing), with the micro-grid of the link it came through.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from gridbot.store.migrating import record

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    instant: sa.types.TypeEngine[Any] = (
        sa.Text() if bind.dialect.name == "sqlite" else sa.DateTime(timezone=True))
    op.create_table(
        "notice_page_acks",
        sa.Column("notice_id", sa.BigInteger(), primary_key=True),
        sa.Column("person_id", sa.Text(), primary_key=True),
        sa.Column("microgrid", sa.Text(), nullable=False),
        sa.Column("at", instant, nullable=False),
    )
    record(bind, 18)
