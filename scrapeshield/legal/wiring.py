"""Plugging the ledger into a serving Shield: a decision listener and a periodic job."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapeshield.legal import keys
from scrapeshield.legal.collector import WindowCollector
from scrapeshield.legal.feed import LedgerFeeder
from scrapeshield.legal.ledger import Ledger

if TYPE_CHECKING:
    from scrapeshield.runtime import Shield

log = logging.getLogger("scrapeshield.legal")

WINDOW = 300.0  # seconds summarised per ledger entry and client
FEED_EVERY = 60.0  # the job's period
CHECKPOINT_EVERY = 600.0  # a signed head at least this often while the ledger grows


def attach_ledger(shield: Shield) -> LedgerFeeder:
    collector = WindowCollector(
        shield.pseudonymise, window=WINDOW,
        pseudonymise_ips=lambda: shield.policy.source.events.pseudonymise_ips, node=shield.recorder.node,
    )
    shield.engine.listeners.append(collector)
    feeder = LedgerFeeder(Ledger(shield.db), collector, keys.load_or_create(shield.settings.data_dir),
                          shield.clock, checkpoint_every=CHECKPOINT_EVERY)
    shield.jobs.add("ledger", FEED_EVERY, feeder.run)
    return feeder


def final_flush(feeder: LedgerFeeder) -> None:
    """At shutdown: the open windows too, and a signed head. Never raises (the shield is closing)."""
    try:
        feeder.run(final=True)
    except Exception:
        log.exception("could not write the last ledger windows at shutdown")
