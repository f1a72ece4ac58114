"""Alerts: rules evaluated by a background job, delivered to webhooks, Slack and e-mail."""
