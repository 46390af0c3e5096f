"""0004 stats households: the baseline's SQL of version 4 (see the package's docstring)."""

from gridbot.store.migrating import apply_legacy

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_legacy(4)
