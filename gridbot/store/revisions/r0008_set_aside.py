"""0008 set aside: the baseline's SQL of version 8 (see the package's docstring)."""

from gridbot.store.migrating import apply_legacy

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_legacy(8)
