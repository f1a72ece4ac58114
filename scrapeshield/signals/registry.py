"""The detector registry: every detector the engine runs, in order."""

from __future__ import annotations

from scrapeshield.signals.activity import ActivityDetector
from scrapeshield.signals.base import Detector, DetectorFactory
from scrapeshield.signals.enumeration import EnumerationDetector
from scrapeshield.signals.headers import HeaderConsistencyDetector
from scrapeshield.signals.honeypot import HoneypotDetector
from scrapeshield.signals.user_agent import UserAgentDetector

DETECTORS: tuple[DetectorFactory, ...] = (
    ActivityDetector,
    UserAgentDetector,
    HeaderConsistencyDetector,
    EnumerationDetector,
    HoneypotDetector,
)

__all__ = ["DETECTORS", "Detector", "DetectorFactory"]
