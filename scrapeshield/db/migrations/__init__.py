"""Alembic environment and revisions for the shield's database, run from code (see ``db.migrate``)."""
