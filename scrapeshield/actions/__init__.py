"""Stage 5: what the shield answers instead of letting a request through unchanged."""
