"""Tables of the console (#5): users, sessions, cases, alerts.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # the tables arrive with that work


def downgrade() -> None:
    pass
