"""The policy's ``detection:`` section: knobs of the behaviour and campaign detectors.

Kept apart from ``schema.py`` so the detection settings read as one unit; every
default here is the one the quality benchmark was tuned with.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Seconds = Annotated[float, Field(gt=0, le=30 * 86400)]
Count = Annotated[int, Field(ge=1, le=10_000_000)]
PrivacyLevel = Literal["public", "signed-in", "protected"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Campaigns(_Strict):
    """Counters shared by every client with one trait (fingerprint, /24 network).

    A "bare" read is a personal record read with no referer from the site, no challenge
    pass and no API token. People who land on a profile load its assets; a scraper
    spread over thousands of addresses does not. When the clients sharing a trait made
    ``bare_records`` bare reads of distinct records within ``window`` and loaded fewer than
    ``assets_per_read`` assets per such read, or read ``bare_share`` of all the distinct
    records they read bare (people reach most profiles from the site's own pages), every
    asset-less client with that trait is scored as part of a campaign. A fleet of real
    browsers on rotating addresses is caught by breadth instead: its fingerprint reads
    ``breadth_records`` distinct records within ``breadth_window`` from ``breadth_clients``
    addresses or more, ``breadth_per_client`` per address or more (people who share a
    fingerprint read a handful each). With ``hold_pages``, a page read that only the
    fingerprint or network counters doubt is not challenged: it is served with its personal
    fields held back, and the page's script (the challenge's proof of work, solved unseen)
    brings them (actions/hold.py).
    """

    window: Seconds = 600  # the window of the shared counters
    bare_records: Count = 40  # distinct records read bare by one fingerprint's clients
    network_bare_records: Count = 40  # distinct records read bare by one /24's clients
    assets_per_read: Annotated[float, Field(ge=0, le=100)] = 1.0  # fewer assets per bare read: a campaign
    bare_share: Annotated[float, Field(gt=0, le=1)] = 0.5  # or this share of its records read bare
    breadth_window: Seconds = 3600  # the window of the fingerprint breadth counters
    breadth_records: Count = 100  # distinct records one fingerprint's clients read in it
    breadth_clients: Count = 5  # from at least this many addresses
    breadth_per_client: Count = 15  # and at least this many records per address
    hold_pages: bool = True  # a page challenged for the campaign alone: fields held for its script


class Accounts(_Strict):
    """Account misuse the regulators named: one account used from many networks, and new
    accounts that do little but look other users up."""

    networks_window: Seconds = 900  # the window in which an account's networks are counted
    max_networks: Count = 4  # more distinct /24 networks than this within the window
    new_account_window: Seconds = 3600  # an account's first window
    new_account_records: Count = 40  # records read within its first window


class Privacy(_Strict):
    """User privacy levels (the platform sets them per record through the admin API).

    ``route_levels`` sets a floor per route (e.g. the JSON API signed-in only). A signed-out
    read of a ``signed-in`` record meets a sign-in wall (401); a ``protected`` record is
    degraded for every client that is signed out or scores ``protected_score`` or more, and
    more than ``protected_records`` protected records read by one address within
    ``protected_window`` get ``protected_action`` too (a stricter budget).
    """

    default: PrivacyLevel = "public"  # the level of a record the platform set none for
    route_levels: dict[str, PrivacyLevel] = Field(default_factory=dict)  # a floor per route name
    protected_score: Annotated[float, Field(ge=0, le=100)] = 20  # from this score up, degrade
    protected_action: Literal["degrade", "block"] = "degrade"  # for protected records
    protected_records: Count = 20  # protected records one address may read within the window
    protected_window: Seconds = 3600  # the window of that budget


class Detection(_Strict):
    campaigns: Campaigns = Campaigns()  # counters shared by clients with one trait
    accounts: Accounts = Accounts()  # account misuse
    privacy: Privacy = Privacy()  # user privacy levels
    paginated_routes: list[str] = Field(default_factory=list)  # lists whose depth counts
    search_routes: list[str] = Field(default_factory=list)  # routes whose ``q`` is a search
    verify_search_engines: bool = True  # range + forward-confirmed reverse DNS (goodbots)
