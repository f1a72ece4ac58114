"""The human-readable report of an evidence pack: facts (``pack_facts``) → ``Document``."""

from __future__ import annotations

from typing import Any

from scrapeshield.legal.document import Document, Section, Table, number, when

PSEUDONYMS = (
    "Client addresses and networks appear as pseudonyms (p:…): keyed hashes (HMAC-SHA256) made "
    "with a secret only the platform holds, so this pack discloses no IP address. The platform "
    "can confirm that an address given to it (for instance by a court order or an Internet "
    "provider) is the one behind a pseudonym by computing the same hash with its key "
    "(scrapeshield evidence pseudonym ADDRESS). Networks are the /24 (IPv4) or /48 (IPv6) "
    "prefixes of the addresses. Autonomous systems (ASNs) are not recorded: the shield has no "
    "ASN database; the platform can map the disclosed addresses to ASNs with a public registry."
)


RAW = ("Client addresses appear as recorded: this platform's policy keeps raw addresses "
       "(events.pseudonymise_ips: false). Networks are /24 (IPv4) or /48 (IPv6) prefixes; ASNs are "
       "not recorded.")


def _addresses(facts: dict[str, Any]) -> str:
    raw = any(not str(n).startswith("p:") for n in facts["networks"])
    return RAW if raw else PSEUDONYMS


def _rows(counts: dict[str, Any], limit: int = 50) -> list[list[str]]:
    return [[str(k) or "(none)", number(v)] for k, v in list(counts.items())[:limit]]


def evidence_document(facts: dict[str, Any], pack: dict[str, Any]) -> Document:
    c = facts["campaign"]
    t = facts["totals"]
    refused = sum(v for k, v in facts["actions"].items() if k != "allow")
    doc = Document(
        title=f"Evidence report: scraping campaign {c['id']}",
        subtitle=f"{c.get('label', '')} - from {when(c.get('first_seen'))} to {when(c.get('last_seen'))}; "
                 f"pack made {when(pack['created_at'])}",
        figures=[("Campaign", str(c["id"])), ("Requests", number(t["requests"])),
                 ("Clients (address pseudonyms)", number(t["clients"])),
                 ("Personal records touched", number(t["records_touched"])),
                 ("Real records served", number(t["records_taken"])),
                 ("Requests refused or altered", number(refused)),
                 ("Ledger entries", f"seq {pack['first_seq']} to {pack['last_seq']}")],
        footer=(f"Signed by key {pack['key_id']} (Ed25519). Check this pack with: scrapeshield evidence "
                "verify PACK.zip --public-key platform.pem. Every file is listed with its SHA-256 in "
                "manifest.json, whose signature is manifest.sig."),
    )
    doc.sections.append(Section("About this pack", [
        "This report is generated from ledger.jsonl, the slice of the platform's append-only, "
        "hash-chained evidence ledger about this campaign. Each ledger entry commits to the one "
        "before it; entries about other clients appear only as their hashes (withheld), so the "
        "chain can be checked without disclosing them. The head of the chain is signed.",
        "Records 'served' were answered with the real profile (decision allow). Requests that "
        "were throttled, challenged, blocked, tarpitted, degraded (personal fields removed) or "
        "answered with decoy records handed over no real personal data.", _addresses(facts),
        f"Campaign grouping: {c.get('kind', '')} - {c.get('key', '')}; status {c.get('status', '')}, "
        f"action {c.get('action') or 'none'}; reasons: {'; '.join(c.get('reasons') or [])}.",
    ]))
    empty = [] if facts["timeline"] else [
        "The ledger holds no request summaries of this campaign's clients yet: a window reaches the "
        "ledger once it has closed (5 minutes) and the next feed has run (every minute)."]
    doc.sections.append(Section("Timeline", empty, tables=[Table(
        ["Window (UTC)", "Clients", "Requests", "Records touched", "Real records served", "Decisions"],
        [[when(w["start"]), number(w["clients"]), number(w["requests"]), number(w["records_touched"]),
          number(w["taken"]), ", ".join(f"{k} {v}" for k, v in sorted(w["actions"].items()))]
         for w in facts["timeline"]])]))
    doc.sections.append(Section("Volumes and decisions taken", tables=[
        Table(["Decision", "Requests"], _rows(facts["actions"]), "By decision"),
        Table(["Rule or limit that decided", "Requests"], _rows(facts["rules"]), "By rule"),
        Table(["Route", "Requests"], _rows(facts["routes"]), "By route"),
    ]))
    doc.sections.append(Section("Records touched by data category", [
        "Distinct real records served, by the data categories of the fields each route exposes "
        "(the policy's data map)."],
        tables=[Table(["Category", "Records"], _rows(facts["categories"]))]))
    doc.sections.append(Section("Addresses, networks and ASNs", [_addresses(facts)], tables=[
        Table(["Network (/24 or /48, pseudonym)", "Clients seen in it"], _rows(facts["networks"]))]))
    doc.sections.append(Section("User-agents and fingerprints", tables=[
        Table(["User-agent", "Requests"], _rows(facts["user_agents"], 25)),
        Table(["Client fingerprint", "Client windows"], _rows(facts["fingerprints"], 25))]))
    if facts["states"]:
        doc.sections.append(Section("Campaign as recorded over time", tables=[Table(
            ["Ledger seq", "Updated", "Status", "Action", "Clients", "Requests", "Records", "Score"],
            [[str(s["seq"]), when(s["updated_at"]), str(s["status"]), str(s["action"] or "-"),
              number(s["clients"] or 0), number(s["requests"] or 0), number(s["records"] or 0),
              number(s["score"] or 0)] for s in facts["states"]])]))
    doc.sections.append(Section("Analyst actions (audit trail)", [] if facts["audit"] else ["None recorded."],
        tables=[Table(["Ledger seq", "When", "Who", "Action", "Detail"],
                      [[str(a["seq"]), when(a["at"]), str(a["actor"]), str(a["action"]), str(a["detail"])]
                       for a in facts["audit"]])] if facts["audit"] else []))
    for name, title in (("terms", "Terms of service in force"), ("robots", "robots.txt in force")):
        text = facts["texts"][name]
        doc.sections.append(Section(title, [f"Source: {text['source']}; SHA-256 {text['sha256']}."],
                                    texts=[text["text"]]))
    return doc
