"""Account misuse, as the regulators named it.

- one account (one set of credentials) used from many networks in a short time: an
  account farm's accounts rotate through proxies, a person's phone changes network a
  couple of times;
- new accounts that do little but look other users up: the account's record reads over
  the last 30 days (as far as the shield remembers) are mostly this first window's, and
  there are many of them.
"""

from __future__ import annotations

from typing import Final

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.signals.base import DetectorBase
from scrapeshield.signals.shared import ACCT_NETWORKS, ACCT_NEW, ACCT_READS
from scrapeshield.state.base import ClientMemory
from scrapeshield.types import RequestContext, Signal

NEW_SHARE: Final = 0.8  # share of the account's remembered reads that fall in its first window


class AccountsDetector(DetectorBase):
    name = "accounts"

    def __init__(self, policy: CompiledPolicy) -> None:
        found = policy.source.detection.accounts
        self._networks_weight = policy.weights["accounts.many-networks"]
        self._new_weight = policy.weights["accounts.new-account-lookups"]
        self._max_networks = found.max_networks
        self._networks_window = found.networks_window
        self._new_records = found.new_account_records
        self._new_window = found.new_account_window

    def inspect(self, ctx: RequestContext, memory: ClientMemory, out: list[Signal]) -> None:
        shared = memory.shared
        if not shared or not ctx.account:
            return
        networks = shared[ACCT_NETWORKS]
        if networks > self._max_networks:
            out.append(Signal(
                "accounts.many-networks", self._networks_weight,
                f"account used from {int(networks)} networks in {self._networks_window:g}s",
            ))
        new = shared[ACCT_NEW]
        if new >= self._new_records and new >= NEW_SHARE * shared[ACCT_READS]:
            out.append(Signal(
                "accounts.new-account-lookups", self._new_weight,
                f"account read {int(new)} profiles in {self._new_window:g}s and "
                f"{int(shared[ACCT_READS])} in all",
            ))
