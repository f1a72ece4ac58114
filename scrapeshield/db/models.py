"""Tables. The same models serve SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class EventRow(Base):
    """One recorded decision. ``client`` and ``network`` are pseudonyms unless the policy says otherwise.

    ``uid`` names the event across nodes, spool replays and stream redeliveries: a row
    with a ``uid`` already stored is not written again (NULL only for rows older than it).
    """

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uid: Mapped[str | None] = mapped_column(String(40), nullable=True)
    ts: Mapped[float] = mapped_column(Float, index=True)
    client: Mapped[str] = mapped_column(String(64))  # indexed with ts, below
    network: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(512))
    route: Mapped[str] = mapped_column(String(64))
    record: Mapped[str] = mapped_column(String(160))
    user_agent: Mapped[str] = mapped_column(String(512))
    account: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16), index=True)
    score: Mapped[float] = mapped_column(Float)
    rule: Mapped[str] = mapped_column(String(96))
    reasons: Mapped[str] = mapped_column(Text)  # JSON array of strings

    __table_args__ = (
        Index("ux_events_uid", "uid", unique=True),
        Index("ix_events_client_ts", "client", "ts"),  # one client's timeline (console, campaigns)
    )


class ListEntryRow(Base):
    """An analyst's block/allow entry; removal is recorded, not deleted."""

    __tablename__ = "list_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(16))
    expires: Mapped[float] = mapped_column(Float)  # 0 = never
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    removed_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_list_live", "kind", "value", "removed_at"),)


class AuditRow(Base):
    """Append-only record of every administrative action: who, when, what."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)  # JSON object


# ---- Campaigns (detection, #3): read by the console (#5) and the evidence ledger (#6). ----


class CampaignRow(Base):
    """Clients grouped by a shared trait (fingerprint, network, ASN, pace, target list).

    ``id`` is stable for a trait (``cmp-`` + hash of kind and key), so regrouping updates a
    campaign in place instead of creating a new one. ``key`` never holds a raw IP.
    """

    __tablename__ = "campaigns"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # fingerprint | network | asn | pacing | targets
    key: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(200))
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float, index=True)
    clients: Mapped[int] = mapped_column(Integer)
    requests: Mapped[int] = mapped_column(Integer)
    records: Mapped[int] = mapped_column(Integer)  # distinct personal records touched
    score: Mapped[float] = mapped_column(Float, index=True)
    status: Mapped[str] = mapped_column(String(16))  # active | contained | closed
    action: Mapped[str] = mapped_column(String(16))  # enforcement on the whole campaign, "" none
    reasons: Mapped[str] = mapped_column(Text)  # JSON array of strings
    updated_at: Mapped[float] = mapped_column(Float)


class CampaignMemberRow(Base):
    """One client (pseudonym) in one campaign, with what it did there."""

    __tablename__ = "campaign_members"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(String(40))
    client: Mapped[str] = mapped_column(String(64), index=True)
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)
    requests: Mapped[int] = mapped_column(Integer)
    records: Mapped[int] = mapped_column(Integer)
    accounts: Mapped[str] = mapped_column(Text, default="[]")  # JSON array: accounts it used

    __table_args__ = (Index("ux_campaign_member", "campaign_id", "client", unique=True),)


# ---- Detection extras (#3): decoy canaries, user privacy levels. Migration 0004. ----


class CanaryRow(Base):
    """A canary value planted in a decoy record: who received it, when, and with what trait.

    ``client`` and ``network`` are pseudonyms (the same as the events'), never raw addresses.
    """

    __tablename__ = "canaries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    value: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))  # email | phone
    client: Mapped[str] = mapped_column(String(64))
    network: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(128))
    record: Mapped[str] = mapped_column(String(160))  # the real record the decoy stood in for
    route: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(512))
    ts: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ux_canaries_value", "value", unique=True),
        Index("ix_canaries_client", "client"),
    )


class PrivacyLevelRow(Base):
    """A user's privacy level as the platform set it (C10); absent: the policy's default."""

    __tablename__ = "privacy_levels"
    record: Mapped[str] = mapped_column(String(160), primary_key=True)  # "user:42", "username:ana"
    level: Mapped[str] = mapped_column(String(16))  # public | signed-in | protected
    updated_at: Mapped[float] = mapped_column(Float)
    updated_by: Mapped[str] = mapped_column(String(64))


# ---- Console (#5): users, sessions, cases, alerts. Migration 0005. ----


class ConsoleUserRow(Base):
    """A person who signs in to the console; ``password`` is an argon2id hash, never the password."""

    __tablename__ = "console_users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    password: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))  # analyst | admin | legal
    created_at: Mapped[float] = mapped_column(Float)
    disabled: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # wrong passwords in a row
    retry_at: Mapped[float] = mapped_column(Float, default=0.0)  # no attempt before (slow-down)
    locked_until: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (Index("ux_console_users_username", "username", unique=True),)


class ConsoleSessionRow(Base):
    """A signed-in browser. ``id`` is the SHA-256 of the cookie value, so a leaked table signs no one in."""

    __tablename__ = "console_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)


class CaseRow(Base):
    """An investigation: status open → investigating → mitigated → closed; ``legal_at`` once handed off."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)
    assignee: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    legal_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class CaseNoteRow(Base):
    __tablename__ = "case_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(Integer, index=True)
    ts: Mapped[float] = mapped_column(Float)
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)


class CaseLinkRow(Base):
    """A campaign or client (pseudonym) a case is about."""

    __tablename__ = "case_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # campaign | client
    ref: Mapped[str] = mapped_column(String(64), index=True)

    __table_args__ = (Index("ux_case_link", "case_id", "kind", "ref", unique=True),)


class AlertRuleRow(Base):
    """A condition the alert job checks: ``kind`` rate | score | new_campaign | records."""

    __tablename__ = "alert_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[float] = mapped_column(Float)
    window: Mapped[float] = mapped_column(Float)  # seconds looked back
    enabled: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)


class AlertChannelRow(Base):
    """Where alerts go: ``kind`` webhook (generic JSON) | slack | email; ``target`` a URL or address."""

    __tablename__ = "alert_channels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(500))
    enabled: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)


class AlertRow(Base):
    """One alert raised. ``dedup`` is unique: the same condition in the same period alerts once."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedup: Mapped[str] = mapped_column(String(200))
    rule_id: Mapped[int] = mapped_column(Integer)
    ts: Mapped[float] = mapped_column(Float, index=True)
    title: Mapped[str] = mapped_column(String(300))
    detail: Mapped[str] = mapped_column(Text)  # JSON object

    __table_args__ = (Index("ux_alerts_dedup", "dedup", unique=True),)


class AlertDeliveryRow(Base):
    """One alert to one channel: pending until sent, retried with backoff, failed after the last try."""

    __tablename__ = "alert_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(Integer, index=True)
    channel_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer)
    next_try: Mapped[float] = mapped_column(Float)
    last_error: Mapped[str] = mapped_column(String(500))
    sent_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_alert_deliveries_due", "status", "next_try"),)


# Search across clients by account, fingerprint and network, without a scan of every event.
# Only events with an account are in its index (most have none: one index write less each);
# a search by account says ``account != ''`` so that the databases use it (migration 0007).
EVENTS_WITH_ACCOUNT = text("account != ''")
Index("ix_events_account", EventRow.account, sqlite_where=EVENTS_WITH_ACCOUNT,
      postgresql_where=EVENTS_WITH_ACCOUNT)
Index("ix_events_fingerprint", EventRow.fingerprint)
Index("ix_events_network", EventRow.network)


# ---- Legal (#6): evidence ledger, checkpoints, incidents. Migration 0006. ----


class LedgerEntryRow(Base):
    """One entry of the append-only evidence ledger (``scrapeshield.legal.ledger``).

    ``hash`` = SHA-256(``prev_hash`` + ``digest``), ``digest`` = SHA-256 of the entry's
    canonical JSON, so each entry commits to all before it. ``seq`` is the primary key:
    two nodes appending at once cannot both write the same position, so the chain never forks.
    ``ref`` makes a source item (an audit row, a campaign state) go in once across nodes.
    """

    __tablename__ = "ledger_entries"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[float] = mapped_column(Float, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # window | campaign | audit
    subject: Mapped[str] = mapped_column(String(64), index=True)  # client pseudonym, campaign id, actor
    ref: Mapped[str | None] = mapped_column(String(120), nullable=True)
    body: Mapped[str] = mapped_column(Text)  # canonical JSON
    digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ux_ledger_ref", "kind", "ref", unique=True),)


class LedgerCheckpointRow(Base):
    """A signed statement that the ledger's head at ``seq`` had ``hash`` (Ed25519)."""

    __tablename__ = "ledger_checkpoints"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[float] = mapped_column(Float)
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(128))  # hex


class BreachIncidentRow(Base):
    """A breach assessment on record: the facts, the outcome per jurisdiction, deadlines."""

    __tablename__ = "breach_incidents"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(200))  # "campaign cmp-…", "range …", "replay …"
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    aware_at: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    subjects: Mapped[int] = mapped_column(Integer)
    next_deadline: Mapped[float | None] = mapped_column(Float, nullable=True)
    assessment: Mapped[str] = mapped_column(Text)  # JSON of Assessment.to_dict()
