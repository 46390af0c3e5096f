"""0009 heartbeats: the baseline's SQL of version 9 (see the package's docstring)."""

from gridbot.store.migrating import apply_legacy

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_legacy(9)
