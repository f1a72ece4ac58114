"""The events' account index holds only events with an account.

Most events have none (anonymous traffic, scrapers above all), and each of them was one
more index entry to write at every insert, for a search that never asks for the empty
account. ``ix_events_account`` becomes a partial index ``WHERE account != ''``; a search
by account says ``account != ''`` too, so both SQLite and PostgreSQL use it.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_WITH_ACCOUNT = sa.text("account != ''")


def upgrade() -> None:
    op.drop_index("ix_events_account", table_name="events")
    op.create_index("ix_events_account", "events", ["account"], sqlite_where=_WITH_ACCOUNT,
                    postgresql_where=_WITH_ACCOUNT)


def downgrade() -> None:
    op.drop_index("ix_events_account", table_name="events")
    op.create_index("ix_events_account", "events", ["account"])
