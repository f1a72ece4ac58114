"""Storage for events, lists and the audit trail: SQLAlchemy, from a URL (SQLite by default)."""
