"""The admin address: JSON admin API and Prometheus metrics. Never served on the public port."""
