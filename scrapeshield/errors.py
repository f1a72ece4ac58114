"""One exception tree for everything scrapeshield raises on purpose."""

from __future__ import annotations


class ScrapeshieldError(Exception):
    """Base of every error scrapeshield raises."""


class PolicyError(ScrapeshieldError):
    """A policy file is invalid. ``problems`` lists every fault found, each naming key and line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid policy\n" + "\n".join(f"  - {p}" for p in problems))


class ConfigError(ScrapeshieldError):
    """A command-line or environment setting is unusable."""


class StateError(ScrapeshieldError):
    """The counter state backend failed (e.g. Redis unreachable)."""
