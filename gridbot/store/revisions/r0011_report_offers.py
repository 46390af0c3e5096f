"""0011 report offers: the baseline's SQL of version 11 (see the package's docstring)."""

from gridbot.store.migrating import apply_legacy

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_legacy(11)
