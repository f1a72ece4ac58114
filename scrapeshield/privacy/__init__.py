"""User privacy levels (C10): ``levels`` holds and enforces them, ``api`` lets the platform set them."""

from scrapeshield.privacy.levels import LEVELS, Level, PrivacyLevels, PrivacyRules

__all__ = ["LEVELS", "Level", "PrivacyLevels", "PrivacyRules"]
