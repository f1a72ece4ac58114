"""The stored rows are exactly what each decision says, whichever way they reach the database:
the writer's own tuples, or rows read back from the spool after a failed delivery."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from scrapeshield.clock import ManualClock
from scrapeshield.db.clean import EVENT_COLUMNS, EVENT_LENGTHS, clean_text
from scrapeshield.db.spool import EventSpool
from scrapeshield.db.store import Database
from scrapeshield.events import EventRecorder, Pseudonymiser
from scrapeshield.policy.loader import parse_policy
from scrapeshield.types import Action, Decision, RequestContext

KEY = b"k" * 32


def ctx(n: int, **changes: Any) -> RequestContext:
    base = RequestContext(
        ts=1_700_000_000.0 + n / 8, ip=f"198.51.100.{n % 200}", network="198.51.100.0/24", scheme="http",
        method="GET", path=f"/u/user{n}", route="profile", record=f"user:{n}", headers=(),
        user_agent="Mozilla/5.0", account="" if n % 3 else "alice", session="", token="",
        fingerprint=f"{n:016x}", tls_fingerprint="", referer="", pass_cookie="", is_asset=False, cost=1,
        host="", client_hints=None, header_names=())
    return base._replace(**changes)


CASES: list[tuple[RequestContext, Decision]] = [
    (ctx(n), Decision(Action.CHALLENGE, 41.5 + n, (f"reason {n}", "fleet"), "score")) for n in range(120)
] + [
    (ctx(1, path="/\x00évil" + "p" * 600, user_agent="ü" * 700 + "\ud800", account="a" * 200),
     Decision(Action.BLOCK, 90.0, ('quoted "x"', "ünï", "back\\slash"), "rule" * 40)),
    (ctx(2, method="X" * 40, route="r" * 100, ip="2001:db8::7", network="2001:db8::/48"),
     Decision(Action.THROTTLE, 0.0, (), "limit:ip-burst", 6.0)),
    (ctx(3, fingerprint="f" * 50, user_agent="nul\x00"), Decision(Action.TARPIT, 12.0, ("t",), "list")),
    (ctx(4, record=""), Decision(Action.ALLOW, 0.0, (), "")),  # a sampled allow (every one here)
]


def expected(node: str, pseudonymise_ips: bool) -> list[tuple[Any, ...]]:
    """Each event as the events table defines it, worked out independently of the writer."""

    def pseudonym(value: str) -> str:
        if not pseudonymise_ips:
            return value
        return "p:" + hmac.new(KEY, value.encode(), hashlib.sha256).digest()[:12].hex()

    rows = []
    for seq, (c, d) in enumerate(CASES, start=1):
        values = {
            "uid": f"{node}-{seq}", "ts": c.ts, "client": pseudonym(c.ip), "network": pseudonym(c.network),
            "method": c.method, "path": c.path, "route": c.route, "record": c.record,
            "user_agent": c.user_agent, "account": c.account, "fingerprint": c.fingerprint,
            "action": d.action.value, "score": d.score, "rule": d.rule,
            "reasons": json.dumps(list(d.reasons)),
        }
        rows.append(tuple(
            clean_text(v, EVENT_LENGTHS.get(k, 0)) if isinstance(v, str) else v for k, v in values.items()))
    return rows


def stored(db: Database) -> list[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM events ORDER BY id")]  # noqa: S608 - fixed names


def _fail(rows: object) -> None:
    raise ConnectionError("database unreachable")


@pytest.mark.parametrize("pseudonymise_ips", [True, False])
@pytest.mark.parametrize("via_spool", [False, True])
def test_stored_rows_are_the_decisions(tmp_path: Path, pseudonymise_ips: bool, via_spool: bool) -> None:
    pseudo = str(pseudonymise_ips).lower()
    policy = parse_policy(f"events: {{sample_allow: 1.0, pseudonymise_ips: {pseudo}}}\n")
    db = Database(f"sqlite:///{tmp_path / 'e.db'}")
    spool = EventSpool(tmp_path / "spool") if via_spool else None
    recorder = EventRecorder(db, policy, ManualClock(), Pseudonymiser(KEY), spool=spool,
                             sink=_fail if via_spool else None)
    for c, d in CASES:
        recorder(c, d)
    recorder.flush()
    if via_spool:  # the sink failed: every row went to disk, as JSON; now deliver them from there
        assert recorder.spooled == len(CASES) and db.count_events() == 0
        recorder._sink = None
        recorder.flush()
    assert stored(db) == expected(recorder.node, pseudonymise_ips)
    recorder.close()
    db.close()


def test_a_batch_of_plain_tuples_and_one_odd_row_are_each_cleaned_alike(tmp_path: Path) -> None:
    """A batch with one row to clean is checked row by row: the plain rows are stored unchanged."""
    db = Database(f"sqlite:///{tmp_path / 'e.db'}")
    plain = ("u-1", 1.0, "c", "n", "GET", "/", "", "", "ua", "", "fp", "block", 1.0, "r", "[]")
    odd = ("u-2", 2.0, "c", "n", "GET", "/\x00" + "x" * 600, "", "", "ü", "", "fp", "block", 1.0, "r", "[]")
    old = {**dict(zip(EVENT_COLUMNS, plain, strict=True)), "uid": None}  # a row of an older version
    db.write_events([plain, odd, old])
    assert stored(db) == [plain, (*odd[:5], "/\ufffd" + "x" * 510, *odd[6:]), (None, *plain[1:])]
    db.close()
