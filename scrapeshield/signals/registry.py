"""The detector registry: every detector the engine runs, in order."""

from __future__ import annotations

from scrapeshield.signals.accounts import AccountsDetector
from scrapeshield.signals.activity import ActivityDetector
from scrapeshield.signals.base import Detector, DetectorFactory
from scrapeshield.signals.campaign import CampaignDetector
from scrapeshield.signals.enumeration import EnumerationDetector
from scrapeshield.signals.headers import HeaderConsistencyDetector
from scrapeshield.signals.honeypot import HoneypotDetector
from scrapeshield.signals.navigation import NavigationDetector
from scrapeshield.signals.pacing import PacingDetector
from scrapeshield.signals.search import SearchDetector
from scrapeshield.signals.tls import TlsDetector
from scrapeshield.signals.user_agent import UserAgentDetector

DETECTORS: tuple[DetectorFactory, ...] = (
    ActivityDetector,
    UserAgentDetector,
    HeaderConsistencyDetector,
    EnumerationDetector,
    HoneypotDetector,
    TlsDetector,
    # Behaviour over time; they read the counts ActivityDetector keeps, so they come after it.
    PacingDetector,
    NavigationDetector,
    SearchDetector,
    # Shared counters (signals.shared): campaigns and accounts.
    CampaignDetector,
    AccountsDetector,
)

__all__ = ["DETECTORS", "Detector", "DetectorFactory"]
