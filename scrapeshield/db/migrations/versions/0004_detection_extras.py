"""Tables of the detection (#3): decoy canaries, user privacy levels.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # the tables arrive with that work


def downgrade() -> None:
    pass
