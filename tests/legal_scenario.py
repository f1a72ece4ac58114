"""A scraping scenario for the legal tests, run through the real engine on a manual clock.

Scrapers with Chrome headers (one campaign: 60 rotating addresses, 5 profiles each, and one
address walking IDs in order) take profiles; a person
reads a handful of profiles; the shield's ledger feed (collector + feeder, as the Shield wires
them) writes it all to a real database. The campaign row is written as the detection job would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert

from scrapeshield.clock import ManualClock
from scrapeshield.db.models import CampaignMemberRow, CampaignRow
from scrapeshield.db.store import Database
from scrapeshield.engine import Engine
from scrapeshield.events import Pseudonymiser
from scrapeshield.legal import keys
from scrapeshield.legal.collector import WindowCollector
from scrapeshield.legal.feed import LedgerFeeder
from scrapeshield.legal.ledger import Ledger
from scrapeshield.policy.loader import load_policy
from scrapeshield.state.memory import MemoryStore
from scrapeshield.types import Decision, RequestContext

START = 1_793_700_000.0  # Tuesday 2026-11-03 10:00 UTC
CHROME = [
    ("host", "social.example"),
    ("sec-ch-ua", '"Chromium";v="126", "Google Chrome";v="126", "Not-A.Brand";v="8"'),
    ("sec-ch-ua-mobile", "?0"), ("sec-ch-ua-platform", '"Linux"'),
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/126.0.0.0 Safari/537.36"),
    ("accept", "application/json"), ("accept-encoding", "gzip, deflate, br"),
    ("accept-language", "en-GB,en;q=0.9"),
]
ROTATING = tuple(f"100.{64 + n}.{n}.9" for n in range(1, 61))  # 5 profiles each, own /24s
WALKER = "192.0.2.200"  # one address walking IDs in order: challenged, then blocked
SCRAPERS = (*ROTATING, WALKER)
HUMAN = "203.0.113.50"
CAMPAIGN = "cmp-0123456789abcdef"


@dataclass
class Scenario:
    db: Database
    data_dir: Path
    clock: ManualClock = field(default_factory=lambda: ManualClock(START))
    decisions: list[tuple[RequestContext, Decision]] = field(default_factory=list)
    pseudonymise_ips: bool = True

    def __post_init__(self) -> None:
        self.policy = load_policy(None)
        self.engine = Engine(self.policy, MemoryStore(), self.clock)
        self.pseudonymise = Pseudonymiser(b"k" * 32)
        self.collector = WindowCollector(self.pseudonymise, window=300,
                                         pseudonymise_ips=self.pseudonymise_ips)
        self.engine.listeners.append(self.collector)
        self.engine.listeners.append(lambda ctx, d: self.decisions.append((ctx, d)))
        self.key: Ed25519PrivateKey = keys.load_or_create(self.data_dir)
        self.ledger = Ledger(self.db)
        self.feeder = LedgerFeeder(self.ledger, self.collector, self.key, self.clock)

    def get(self, ip: str, path: str, headers: list[tuple[str, str]] | None = None) -> Decision:
        ctx = self.engine.contexts.build(self.clock.now(), ip, "GET", path, headers or CHROME)
        return self.engine.decide(ctx)

    def scrape(self, ip: str, ids: range, pace: float = 2.0) -> None:
        for user_id in ids:
            self.clock.advance(pace)
            self.get(ip, f"/api/v1/users/{user_id}")

    def run(self) -> None:
        """The standard story: scrapers and a person, then the campaign, an analyst, the feed.
        About 21 minutes of traffic: five ledger windows."""
        for n, ip in enumerate(ROTATING):
            self.scrape(ip, range(1 + n, 301, 60), pace=3.0)  # ids n+1, n+61, ...: not in order
        self.scrape(WALKER, range(1001, 1041), pace=5.0)
        for user_id in (5, 17, 42):
            self.clock.advance(20)
            self.get(HUMAN, f"/api/v1/users/{user_id}")
        self.add_campaign(CAMPAIGN, SCRAPERS)
        self.clock.advance(60)
        self.db.audit(self.clock.now(), "alice", "list.add",
                      {"kind": "campaign", "value": CAMPAIGN, "action": "block", "expires": 0})
        self.clock.advance(600)
        self.feeder.run()

    def add_campaign(self, cid: str, ips: tuple[str, ...]) -> None:
        now = self.clock.now()
        clients = [self.pseudonymise(ip) if self.pseudonymise_ips else ip for ip in ips]
        with self.db.engine.begin() as conn:
            conn.execute(insert(CampaignRow).values(
                id=cid, kind="fingerprint", key="chrome-126-json", label="Chrome 126 JSON walkers",
                first_seen=START, last_seen=now, clients=len(clients), requests=340, records=340,
                score=88.0, status="contained", action="block", reasons='["sequential ids"]',
                updated_at=now))
            for client in clients:
                conn.execute(insert(CampaignMemberRow).values(
                    campaign_id=cid, client=client, first_seen=START, last_seen=now, requests=5,
                    records=5))

    def served(self, ips: tuple[str, ...] = SCRAPERS) -> set[str]:
        """Records the engine answered with ``allow`` for these addresses: the ground truth."""
        return {ctx.record for ctx, d in self.decisions
                if ctx.ip in ips and ctx.record and d.action.value == "allow"}


def ocr_pdf(pdf: bytes, tmp: Path, pages: int = 1) -> str:
    """The first pages of a PDF rendered to PNG (pypdfium2) and read back by Tesseract OCR;
    each page must also be visibly non-blank."""
    import shutil
    import subprocess

    import pypdfium2

    tesseract = shutil.which("tesseract")
    assert tesseract, "tesseract-ocr is needed (scripts/system-deps.sh installs it)"
    document = pypdfium2.PdfDocument(pdf)
    text = []
    try:
        for index in range(min(pages, len(document))):
            image = document[index].render(scale=3).to_pil().convert("L")
            dark = sum(image.histogram()[:128])
            assert dark > image.width * image.height * 0.005, f"page {index + 1} is blank"
            png = tmp / f"page{index + 1}.png"
            image.save(png)
            # --psm 6: read a table row by row, not column by column
            done = subprocess.run([tesseract, str(png), "stdout", "--psm", "6"], capture_output=True,
                                  text=True, timeout=120, check=True)
            text.append(done.stdout)
    finally:
        document.close()
    return "\n".join(text)
