"""The evidence ledger: append-only, hash-chained entries in the database.

Each entry's ``digest`` is SHA-256 of its canonical JSON (sorted keys, no spaces, UTF-8), and
its ``hash`` is SHA-256 of the previous entry's hash followed by that digest, so changing,
removing or reordering any entry breaks every hash after it. An entry's content can be
withheld (a pack shows only the digest of other clients' entries) without breaking the chain.

Appends are serialized: on PostgreSQL by a transaction-scoped advisory lock, everywhere by
``seq`` being the primary key (a second writer of the same position fails and retries on the
new head), so concurrent nodes never fork the chain. Checkpoints sign the head with Ed25519.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, and_, func, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from scrapeshield.db.models import LedgerCheckpointRow, LedgerEntryRow
from scrapeshield.db.store import Database
from scrapeshield.legal import keys

GENESIS = "0" * 64
_LOCK_ID = 0x5C5E_1ED6  # pg_advisory_xact_lock key of ledger appends
_ATTEMPTS = 200


def canonical(value: Any) -> bytes:
    """The one byte form that is hashed and signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def chain_hash(prev_hash: str, digest: str) -> str:
    return sha256(prev_hash + digest)


@dataclass(frozen=True, slots=True)
class NewEntry:
    kind: str  # window | campaign | audit
    subject: str
    body: dict[str, Any]
    ref: str | None = None  # set: the entry is written at most once (idempotent feeds)
    # The body is plain JSON: dicts with str keys only, lists, strs, ints, finite floats, bools
    # and None. Its canonical text then loads back to an equal body that encodes to the same
    # text, so it is encoded once, not encoded, loaded and encoded again (two thirds of what
    # the ledger job spent on a window's clients). A non-str key would be sorted before it
    # became a string: only a producer that builds the body itself can promise this.
    plain: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    ts: float
    kind: str
    subject: str
    ref: str | None
    body: dict[str, Any]
    digest: str
    prev_hash: str
    hash: str

    def content(self) -> dict[str, Any]:
        """What ``digest`` covers."""
        return content(self.seq, self.ts, self.kind, self.subject, self.ref, self.body)

    def to_dict(self) -> dict[str, Any]:
        return {**self.content(), "digest": self.digest, "prev_hash": self.prev_hash, "hash": self.hash}


def content(seq: int, ts: float, kind: str, subject: str, ref: str | None,
            body: dict[str, Any]) -> dict[str, Any]:
    return {"seq": seq, "ts": ts, "kind": kind, "subject": subject, "ref": ref, "body": body}


def canonical_content(seq: int, ts: float, kind: str, subject: str, ref: str | None, body: bytes) -> bytes:
    """``canonical(content(...))`` from the body's canonical bytes, without encoding the body
    again (most of an entry's cost when the ledger job writes a window's clients). "body" is
    the first of the sorted keys, and a nested value is encoded as it is alone."""
    rest = canonical({"seq": seq, "ts": ts, "kind": kind, "subject": subject, "ref": ref})
    return b'{"body":' + body + b"," + rest[1:]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    ts: float
    hash: str
    key_id: str
    signature: str

    def message(self) -> bytes:
        return checkpoint_message(self.seq, self.ts, self.hash)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "hash": self.hash, "key_id": self.key_id,
                "signature": self.signature}


def checkpoint_message(seq: int, ts: float, head: str) -> bytes:
    return canonical({"statement": "scrapeshield ledger head", "seq": seq, "ts": ts, "hash": head})


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    # -- writing -------------------------------------------------------------------

    def append(self, entries: Sequence[NewEntry] | Callable[[Connection], Sequence[NewEntry]],
               ts: float) -> list[Entry]:
        """Append entries at the head in one transaction; returns what was written.

        ``entries`` may be a function of the locked connection, for feeds that must read
        what is already there (which refs exist) under the same lock. Entries whose ``ref``
        is already in the ledger are skipped.
        """
        for attempt in range(_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    self._lock(conn)
                    wanted = entries(conn) if callable(entries) else entries
                    return self._append_locked(conn, list(wanted), round(ts, 6))
            except (IntegrityError, OperationalError) as exc:
                # Another node took the head (or holds SQLite's write lock): read it again.
                if attempt == _ATTEMPTS - 1 or not _retryable(exc):
                    raise
                time.sleep(min(0.005 * (attempt + 1), 0.1))
        raise AssertionError("unreachable")

    def _lock(self, conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})

    def _append_locked(self, conn: Connection, wanted: list[NewEntry], ts: float) -> list[Entry]:
        refs: list[tuple[str, str | None]] = [(e.kind, e.ref) for e in wanted if e.ref is not None]
        if refs:
            seen = existing_refs(conn, refs)
            wanted = [e for e in wanted if e.ref is None or (e.kind, e.ref) not in seen]
        if not wanted:
            return []
        head = conn.execute(
            select(LedgerEntryRow.seq, LedgerEntryRow.hash).order_by(LedgerEntryRow.seq.desc()).limit(1)
        ).first()
        seq, prev = (head[0], head[1]) if head else (0, GENESIS)
        written: list[Entry] = []
        stored: list[bytes] = []
        for item in wanted:
            seq += 1
            if item.plain:
                body, text = item.body, canonical(item.body)
            else:
                body = json.loads(canonical(item.body))  # what is stored is exactly what was hashed
                text = canonical(body)
            digest = sha256(canonical_content(seq, ts, item.kind, item.subject, item.ref, text))
            entry = Entry(seq, ts, item.kind, item.subject, item.ref, body, digest, prev,
                          chain_hash(prev, digest))
            written.append(entry)
            stored.append(text)
            prev = entry.hash
        conn.execute(insert(LedgerEntryRow), [
            {"seq": e.seq, "ts": e.ts, "kind": e.kind, "subject": e.subject, "ref": e.ref,
             "body": text.decode("utf-8"), "digest": e.digest,
             "prev_hash": e.prev_hash, "hash": e.hash}
            for e, text in zip(written, stored, strict=True)
        ])
        return written

    def checkpoint(self, key: Ed25519PrivateKey, ts: float, *, force: bool = False) -> Checkpoint | None:
        """Sign the current head, unless it is already signed (``force``: sign again anyway
        is not possible for the same seq; returns the existing one)."""
        ts = round(ts, 6)
        for attempt in range(_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    self._lock(conn)
                    head = self._head(conn)
                    if head is None:
                        return None
                    seq, head_hash = head
                    existing = conn.execute(
                        select(LedgerCheckpointRow).where(LedgerCheckpointRow.seq == seq)
                    ).mappings().first()
                    if existing is not None:
                        return _checkpoint(dict(existing)) if force else None
                    cp = sign_head(key, seq, ts, head_hash)
                    conn.execute(insert(LedgerCheckpointRow).values(**cp.to_dict()))
                    return cp
            except (IntegrityError, OperationalError) as exc:
                if attempt == _ATTEMPTS - 1 or not _retryable(exc):
                    raise
                time.sleep(min(0.005 * (attempt + 1), 0.1))
        raise AssertionError("unreachable")

    # -- reading -------------------------------------------------------------------

    def _head(self, conn: Connection) -> tuple[int, str] | None:
        row = conn.execute(
            select(LedgerEntryRow.seq, LedgerEntryRow.hash).order_by(LedgerEntryRow.seq.desc()).limit(1)
        ).first()
        return (int(row[0]), str(row[1])) if row else None

    def head(self) -> tuple[int, str] | None:
        with self.engine.connect() as conn:
            return self._head(conn)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(LedgerEntryRow)).scalar_one())

    def entries(self, first: int = 1, last: int | None = None, *, kind: str | None = None,
                subjects: Iterable[str] | None = None, since: float | None = None,
                until: float | None = None) -> list[Entry]:
        query = select(LedgerEntryRow).where(LedgerEntryRow.seq >= first).order_by(LedgerEntryRow.seq)
        if last is not None:
            query = query.where(LedgerEntryRow.seq <= last)
        if kind is not None:
            query = query.where(LedgerEntryRow.kind == kind)
        if since is not None:
            query = query.where(LedgerEntryRow.ts >= since)
        if until is not None:
            query = query.where(LedgerEntryRow.ts <= until)
        out: list[Entry] = []
        wanted = list(subjects) if subjects is not None else None
        with self.engine.connect() as conn:
            chunks = [wanted[i:i + 500] for i in range(0, len(wanted), 500)] if wanted is not None else [None]
            for chunk in chunks:
                q = query if chunk is None else query.where(LedgerEntryRow.subject.in_(chunk))
                out.extend(_entry(dict(r)) for r in conn.execute(q).mappings())
        out.sort(key=lambda e: e.seq)
        return out

    def checkpoints(self, first: int = 1, last: int | None = None) -> list[Checkpoint]:
        query = select(LedgerCheckpointRow).where(LedgerCheckpointRow.seq >= first)
        if last is not None:
            query = query.where(LedgerCheckpointRow.seq <= last)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(LedgerCheckpointRow.seq)).mappings().all()
        return [_checkpoint(dict(r)) for r in rows]

    def verify(self, public: Ed25519PublicKey | None = None) -> list[str]:
        """Check the whole stored chain (and the checkpoints' signatures); returns problems."""
        problems = verify_chain(self.entries(), GENESIS)
        if public is not None:
            by_seq = {e.seq: e.hash for e in self.entries()}
            for cp in self.checkpoints():
                if by_seq.get(cp.seq) != cp.hash:
                    problems.append(f"checkpoint at seq {cp.seq} names a hash the ledger does not have")
                elif not keys.verify(public, cp.signature, cp.message()):
                    problems.append(f"checkpoint at seq {cp.seq}: signature does not verify")
        return problems


def sign_head(key: Ed25519PrivateKey, seq: int, ts: float, head_hash: str) -> Checkpoint:
    signature = key.sign(checkpoint_message(seq, ts, head_hash)).hex()
    return Checkpoint(seq, ts, head_hash, keys.key_id(key.public_key()), signature)


def verify_chain(entries: Sequence[Entry], prev: str) -> list[str]:
    """Problems in a contiguous run of full entries starting after ``prev``."""
    problems: list[str] = []
    for entry in entries:
        if sha256(canonical(entry.content())) != entry.digest:
            problems.append(f"ledger entry seq {entry.seq}: content does not match its digest (altered)")
        if entry.prev_hash != prev:
            problems.append(f"ledger entry seq {entry.seq}: does not follow the entry before it")
        if chain_hash(entry.prev_hash, entry.digest) != entry.hash:
            problems.append(f"ledger entry seq {entry.seq}: hash is wrong")
        prev = entry.hash
    return problems


def existing_refs(conn: Connection, refs: list[tuple[str, str | None]]) -> set[tuple[str, str | None]]:
    seen: set[tuple[str, str | None]] = set()
    for kind in {k for k, _ in refs}:
        names = [r for k, r in refs if k == kind and r is not None]
        for i in range(0, len(names), 500):
            rows = conn.execute(select(LedgerEntryRow.ref).where(
                and_(LedgerEntryRow.kind == kind, LedgerEntryRow.ref.in_(names[i:i + 500]))))
            seen.update((kind, r) for r in rows.scalars())
    return seen


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    message = str(exc).lower()
    return "locked" in message or "busy" in message or "deadlock" in message or "serializ" in message


def _entry(row: dict[str, Any]) -> Entry:
    return Entry(int(row["seq"]), float(row["ts"]), row["kind"], row["subject"], row["ref"],
                 json.loads(row["body"]), row["digest"], row["prev_hash"], row["hash"])


def _checkpoint(row: dict[str, Any]) -> Checkpoint:
    return Checkpoint(int(row["seq"]), float(row["ts"]), row["hash"], row["key_id"], row["signature"])
