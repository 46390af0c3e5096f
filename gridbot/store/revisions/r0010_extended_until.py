"""0010 extended until: the baseline's SQL of version 10 (see the package's docstring)."""

from gridbot.store.migrating import apply_legacy

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_legacy(10)
