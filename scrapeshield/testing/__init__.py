"""Contract suites shipped with the package, so third-party detectors and backends can run them."""
