"""0012 forget: the baseline's SQL of version 12 (see the package's docstring)."""

from gridbot.store.migrating import apply_legacy

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_legacy(12)
