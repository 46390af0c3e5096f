"""0017 residents: the generation of each micro-grid's report link.

A micro-grid's report link (and its QR poster) is signed with its generation; rotating a
leaked link moves the generation on, and links of an earlier one stop working. A
micro-grid without a row is at generation 1.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from gridbot.store.migrating import record

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    instant: sa.types.TypeEngine[Any] = (
        sa.Text() if bind.dialect.name == "sqlite" else sa.DateTime(timezone=True))
    op.create_table(
        "report_links",
        sa.Column("microgrid", sa.Text(), primary_key=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("rotated_at", instant, nullable=False),
        sa.Column("rotated_by", sa.Text(), nullable=False, server_default=""),
    )
    record(bind, 17)
