"""Storage for events, lists and the audit trail: SQLAlchemy, from a URL (SQLite by default)."""

import logging

# Before anything imports Alembic: its INFO chatter (plugins, context) is not for operators;
# ``scrapeshield.db`` logs the migrations it runs. Configure "alembic" yourself to see it all.
if logging.getLogger("alembic").level == logging.NOTSET:
    logging.getLogger("alembic").setLevel(logging.WARNING)
