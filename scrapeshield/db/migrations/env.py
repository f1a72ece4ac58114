"""Alembic environment: always online, on the connection ``db.migrate`` hands over.

New revision from a checkout (the models are the target)::

    python -m scrapeshield.db.migrate revision "what changed" --url sqlite:///tmp/x.db
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from scrapeshield.db.models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("scrapeshield migrations run through scrapeshield.db.migrate, with a connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
