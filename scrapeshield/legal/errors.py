"""The legal package's error: a command cannot do what it was asked (shown to the user as is)."""

from scrapeshield.errors import ScrapeshieldError


class LegalError(ScrapeshieldError):
    """Unknown campaign, empty range, unreadable pack, and the like."""
