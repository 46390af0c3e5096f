"""0007 audit: the baseline's SQL of version 7 (see the package's docstring)."""

from gridbot.store.migrating import apply_legacy

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_legacy(7)
