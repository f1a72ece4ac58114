"""Forensics on logs (C9): replay access logs through the detection engine on their own time.

The stages, in order: ``reader`` (files, gzip, line numbers) → ``parse`` (a log format →
columns, bad lines reported) → ``batch`` (the engine's limits and log-computable detectors,
vectorised) or ``live`` (the real Engine, one line at a time) → ``findings`` (clients,
campaigns, records taken) → ``report`` (text and JSON) and ``store`` (the shield's database).
"""
