"""The in-house team's web console, served on the admin address only (see docs/console.md)."""
