"""0015 places: where a case is (building, unit, room), who asked to stay anonymous, which
case a duplicate was merged into and which incident groups it; the residents following a
case (``case_watchers``); the case a pending duplicate offer points at."""

import sqlalchemy as sa
from alembic import op

from gridbot.store.migrating import record

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("building", sa.Text(), nullable=False,
                                     server_default=""))
    op.add_column("cases", sa.Column("unit", sa.Text(), nullable=False, server_default=""))
    op.add_column("cases", sa.Column("room", sa.Text(), nullable=False, server_default=""))
    # "" (named), "neighbours" (hidden from groups and neighbours), "everyone" (and from
    # the handler too)
    op.add_column("cases", sa.Column("anonymous", sa.Text(), nullable=False,
                                     server_default=""))
    op.add_column("cases", sa.Column("merged_into", sa.BigInteger()))
    op.add_column("cases", sa.Column("incident", sa.BigInteger()))
    op.create_index("cases_incident", "cases", ["incident"])
    op.create_index("cases_merged_into", "cases", ["merged_into"])
    op.create_table(
        "case_watchers",
        sa.Column("case_number", sa.BigInteger(), primary_key=True),
        sa.Column("person_id", sa.Text(), primary_key=True),
        sa.Column("since", sa.Text() if op.get_bind().dialect.name == "sqlite"
                  else sa.DateTime(timezone=True), nullable=False),
        # follow (pressed 关注), merge (their case was merged into this one)
        sa.Column("via", sa.Text(), nullable=False),
        sa.Column("source_case", sa.BigInteger()),
    )
    op.create_index("case_watchers_person", "case_watchers", ["person_id"])
    op.add_column("report_offers", sa.Column("duplicate_of", sa.BigInteger()))
    op.add_column("report_offers", sa.Column("anonymous", sa.Text(), nullable=False,
                                             server_default=""))
    record(op.get_bind(), 15)
