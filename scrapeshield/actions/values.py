"""An action's text by identity, for listeners that run once per decision.

``Action`` is an Enum: ``action.value`` is a Python-level property and a dict keyed by
actions hashes each one with a Python-level ``__hash__``; comparing identities is neither.
"""

from __future__ import annotations

from typing import Final

from scrapeshield.types import Action

_VALUES: Final = {action: action.value for action in Action}
_PAIRS: Final = tuple(_VALUES.items())  # in declaration order: allow first, the usual one


def action_value(action: Action) -> str:
    """``action.value``."""
    for member, value in _PAIRS:
        if member is action:
            return value
    return _VALUES[action]
