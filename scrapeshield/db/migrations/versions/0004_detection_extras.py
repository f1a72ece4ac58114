"""Tables of the detection (#3): decoy canaries, user privacy levels.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canaries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("value", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("network", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("record", sa.String(160), nullable=False),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(512), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
    )
    op.create_index("ux_canaries_value", "canaries", ["value"], unique=True)
    op.create_index("ix_canaries_client", "canaries", ["client"])
    op.create_table(
        "privacy_levels",
        sa.Column("record", sa.String(160), primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("privacy_levels")
    op.drop_table("canaries")
