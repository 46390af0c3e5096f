"""0002 deadlines: the baseline's SQL of version 2 (see the package's docstring)."""

from gridbot.store.migrating import apply_legacy

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_legacy(2)
