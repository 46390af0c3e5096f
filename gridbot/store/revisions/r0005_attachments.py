"""0005 attachments: the baseline's SQL of version 5 (see the package's docstring)."""

from gridbot.store.migrating import apply_legacy

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_legacy(5)
