"""Schema revisions, oldest first: ``0001`` is the schema of 0.1.0's ``create_all``."""
