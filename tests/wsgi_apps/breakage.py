"""Injected shield failures for the end-to-end tests, chosen by $SCRAPESHIELD_TEST_BREAK.

"engine": the state store raises, inside the engine's own guard (its fail mode decides).
"host": the engine itself raises, so only the host adapter's guard stands in between.
"""

from __future__ import annotations

import os

from faults import FailingDecisions, FailingStore

from scrapeshield.runtime import Shield

ENV = "SCRAPESHIELD_TEST_BREAK"


def apply(shield: Shield) -> None:
    # Whole parts swapped, not methods patched: the engine and store may be compiled (faults.py).
    mode = os.environ.get(ENV, "")
    if mode == "engine":
        shield.engine.store = FailingStore(shield.store)
    elif mode == "host":
        shield.engine = FailingDecisions(shield.engine)
    elif mode:
        raise ValueError(f"{ENV}={mode!r}: expected 'engine' or 'host'")
