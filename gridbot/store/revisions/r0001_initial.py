"""0001 initial: the baseline's SQL of version 1 (see the package's docstring)."""

from gridbot.store.migrating import apply_legacy

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_legacy(1)
