"""0003 notices: the baseline's SQL of version 3 (see the package's docstring)."""

from gridbot.store.migrating import apply_legacy

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_legacy(3)
