"""Acting on a whole campaign: list entries for its trait and its members, with expiry.

A fingerprint campaign is acted on through the fingerprint itself, so a new IP that
shows up with it gets the action too; a subnet campaign through the subnet. Members add
their signed-in accounts, and their IPs when the events keep IPs (pseudonymised clients
cannot be listed: a keyed hash does not give the IP back, by design). Every entry is
written to the database (so every node and a restart load it), added to the running
engine's lists when one is given, and the act is audited.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from scrapeshield.campaigns.store import campaign_members, get_campaign, set_campaign_action
from scrapeshield.db.store import Database
from scrapeshield.errors import ScrapeshieldError
from scrapeshield.lists import ListEntry, Lists, normalise
from scrapeshield.types import Action

ACTIONS = {"block": Action.BLOCK, "challenge": Action.CHALLENGE, "allow": Action.ALLOW}
MAX_ENTRIES = 20_000


class CampaignActionError(ScrapeshieldError):
    """The campaign does not exist or offers nothing that a list entry can match."""


@dataclass(frozen=True, slots=True)
class ActResult:
    campaign: str
    action: str
    entries: tuple[ListEntry, ...]
    skipped_pseudonyms: int  # members known only by a pseudonym (not listable)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def plan_entries(db: Database, cid: str, action: Action, expires: float, reason: str,
                 actor: str) -> tuple[list[ListEntry], int]:
    campaign = get_campaign(db, cid)
    if campaign is None:
        raise CampaignActionError(f"no campaign {cid!r}")
    why = f"campaign {cid}: {reason}"[:500]
    wanted: dict[tuple[str, str], None] = {}
    if campaign["kind"] == "fingerprint":
        wanted[("fingerprint", campaign["key"])] = None
    elif campaign["kind"] == "network" and _is_network(campaign["key"]):
        wanted[("network", campaign["key"])] = None
    skipped = 0
    for member in campaign_members(db, cid):
        if _is_ip(member["client"]):
            wanted[("ip", member["client"])] = None
        else:
            skipped += 1
        for account in member["accounts"]:
            wanted[("account", str(account))] = None
    entries = []
    for kind, value in list(wanted)[:MAX_ENTRIES]:
        try:
            entries.append(ListEntry(kind, normalise(kind, value), action, expires, why, actor))
        except ValueError:
            continue
    return entries, skipped


def act_on_campaign(
    db: Database, cid: str, *, action: str = "block", ttl: float = 86400.0, reason: str = "",
    actor: str = "cli", now: float, lists: Lists | None = None,
) -> ActResult:
    """Put the campaign's trait and members on the ``action`` list until ``now + ttl``."""
    if action not in ACTIONS:
        raise CampaignActionError(f"action must be one of {', '.join(ACTIONS)}")
    if ttl <= 0:
        raise CampaignActionError("ttl must be positive (seconds)")
    entries, skipped = plan_entries(db, cid, ACTIONS[action], now + ttl, reason or "campaign action",
                                    actor)
    if not entries:
        raise CampaignActionError(
            f"campaign {cid} has nothing a list can match: its members are pseudonyms and it "
            "has no fingerprint, subnet or account (act on a fingerprint campaign instead)"
        )
    for entry in entries:
        db.add_list_entry(entry, now)
        if lists is not None:
            lists.add(entry)
    set_campaign_action(db, cid, action, "contained" if action != "allow" else "closed", now)
    db.audit(now, actor, "campaign.act", {
        "campaign": cid, "action": action, "ttl": ttl, "reason": reason,
        "entries": len(entries), "kinds": sorted({e.kind for e in entries}),
        "skipped_pseudonyms": skipped,
    })
    return ActResult(cid, action, tuple(entries), skipped)
