"""Injected shield failures for the end-to-end tests, chosen by $SCRAPESHIELD_TEST_BREAK.

"engine": the state store raises, inside the engine's own guard (its fail mode decides).
"host": the engine itself raises, so only the host adapter's guard stands in between.
"""

from __future__ import annotations

import os

from scrapeshield.runtime import Shield

ENV = "SCRAPESHIELD_TEST_BREAK"


def explode(*args: object, **kwargs: object) -> object:
    raise RuntimeError("injected shield failure")


def apply(shield: Shield) -> None:
    mode = os.environ.get(ENV, "")
    if mode == "engine":
        shield.store.update = explode  # type: ignore[method-assign]
    elif mode == "host":
        shield.engine.decide = explode  # type: ignore[method-assign]
    elif mode:
        raise ValueError(f"{ENV}={mode!r}: expected 'engine' or 'host'")
