"""Roles and what each may do. Every console and admin-API route names one permission."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    ANALYST = "analyst"  # investigate and act (lists, campaigns, cases)
    ADMIN = "admin"  # everything, plus users, policy and alert settings
    LEGAL = "legal"  # read everything, export evidence, no enforcement


ALL = frozenset(Role)

# permission → roles that hold it
PERMISSIONS: dict[str, frozenset[Role]] = {
    "view": ALL,  # overview, clients, campaigns, cases, alerts, search
    "act": frozenset({Role.ANALYST, Role.ADMIN}),  # block/allow/challenge, campaign actions
    "case": frozenset({Role.ANALYST, Role.ADMIN}),  # open cases, status, assignee, links, hand-off
    "note": ALL,  # add a note to a case (legal counsel writes notes too)
    "audit": frozenset({Role.ADMIN, Role.LEGAL}),  # read the audit trail
    "export": frozenset({Role.ADMIN, Role.LEGAL}),  # evidence export, legal section
    "admin": frozenset({Role.ADMIN}),  # users, policy, alert rules and channels
}


def allowed(role: str, permission: str) -> bool:
    """Unknown permissions and unknown roles are refused (a typo closes, never opens)."""
    holders = PERMISSIONS.get(permission)
    return holders is not None and role in holders
