"""The alert job: evaluate the enabled rules, raise new alerts once, deliver what is due.

A failed delivery is tried again after ``BASE_DELAY`` doubling up to ``MAX_DELAY``, and
given up after ``MAX_ATTEMPTS`` (it stays listed in the console as failed with its error).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapeshield.console.alerts import channels, rules
from scrapeshield.console.alerts.store import AlertStore

if TYPE_CHECKING:
    from scrapeshield.runtime import Shield

log = logging.getLogger("scrapeshield.alerts")

EVERY = 10.0  # seconds between runs
BASE_DELAY = 10.0
MAX_DELAY = 3600.0
MAX_ATTEMPTS = 8


class AlertJob:
    def __init__(self, shield: Shield) -> None:
        self.shield = shield
        self.store = AlertStore(shield.db.engine)
        self.raised = 0
        self.sent = 0
        self.failures = 0

    def __call__(self) -> None:
        self.evaluate()
        self.deliver()

    def evaluate(self) -> int:
        now = self.shield.clock.now()
        self.shield.recorder.flush()
        new = 0
        for rule in self.store.rules(enabled_only=True):
            for finding in rules.evaluate(self.shield, rule, now):
                alert_id = self.store.raise_alert(finding.dedup, rule["id"], finding.title,
                                                  finding.detail, now)
                if alert_id is not None:
                    new += 1
                    log.warning("alert raised: %s", finding.title,
                                extra={"alert": finding.dedup, "rule": rule["name"]})
        self.raised += new
        return new

    def deliver(self) -> int:
        now = self.shield.clock.now()
        done = 0
        for item in self.store.due(now):
            attempts = item["attempts"] + 1
            try:
                channels.send(item["channel_kind"], item["target"], item)
            except channels.DeliveryError as exc:
                self.failures += 1
                give_up = attempts >= MAX_ATTEMPTS
                delay = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1))
                self.store.retry(item["id"], attempts, now + delay, str(exc), give_up)
                log.warning("alert delivery to %s failed (try %d%s): %s", item["channel_name"], attempts,
                            ", giving up" if give_up else f", again in {delay:.0f} s", exc)
                continue
            self.store.delivered(item["id"], attempts, now)
            self.sent += 1
            done += 1
        return done
