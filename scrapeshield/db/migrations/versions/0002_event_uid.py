"""Events get a unique ``uid`` (written once however often delivered) and a (client, ts) index.

The spool and Redis Streams may deliver an event twice; the unique index on ``uid``
makes the second insert a no-op. Rows from before this revision keep ``uid`` NULL.
``ix_events_client_ts`` serves one client's timeline and makes ``ix_events_client``
redundant.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("uid", sa.String(40), nullable=True))
    op.create_index("ux_events_uid", "events", ["uid"], unique=True)
    op.create_index("ix_events_client_ts", "events", ["client", "ts"])
    op.drop_index("ix_events_client", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_client", "events", ["client"])
    op.drop_index("ix_events_client_ts", table_name="events")
    op.drop_index("ux_events_uid", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("uid")
