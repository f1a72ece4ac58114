"""Evidence packs: one zip about one campaign that a court or regulator can check offline.

Files: ``report.html`` and ``report.pdf`` (human-readable), ``facts.json`` (the figures they
show), ``ledger.jsonl`` (the ledger from the campaign's first entry to a signed head: full
entries about the campaign, digests only for the rest), ``checkpoint.json`` (the signed head),
``terms.txt`` and ``robots.txt`` in force, ``public-key.pem``, ``manifest.json`` (SHA-256 of
every file) and ``manifest.sig`` (Ed25519 over manifest.json). ``verify_pack`` names what was
altered: the file, the ledger entry (seq), a removed or reordered entry, or the wrong key.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from scrapeshield.clock import Clock, SystemClock
from scrapeshield.db.store import Database
from scrapeshield.legal import keys
from scrapeshield.legal.breach import DataMap
from scrapeshield.legal.document import to_html, to_pdf
from scrapeshield.legal.errors import LegalError
from scrapeshield.legal.incident import campaign_clients, campaign_row
from scrapeshield.legal.ledger import Checkpoint, Entry, Ledger, canonical
from scrapeshield.legal.pack_facts import campaign_facts
from scrapeshield.legal.pack_report import evidence_document
from scrapeshield.legal.verify import verify_files
from scrapeshield.policy.compiled import CompiledPolicy

FORMAT = "scrapeshield-evidence/1"
DEMO_TERMS = Path(__file__).parent / "data" / "demo-terms.txt"
MAX_PACK_BYTES = 4 << 30  # uncompressed; a ledger slice of millions of entries stays well below


@dataclass(slots=True)
class VerifyResult:
    ok: bool
    problems: list[str] = field(default_factory=list)
    key_id: str = ""
    campaign: str = ""
    entries: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "key_id": self.key_id,
                "campaign": self.campaign, "entries": self.entries}


def _texts(policy: CompiledPolicy | None, terms_path: Path | None, robots_path: Path | None,
           policy_dir: Path | None) -> dict[str, tuple[str, str]]:
    legal = policy.source.legal if policy is not None else None

    def from_policy(name: str | None) -> Path | None:  # relative to the policy file when known
        if not name:
            return None
        return policy_dir / name if policy_dir is not None and not Path(name).is_absolute() else Path(name)

    terms = terms_path or from_policy(legal.terms_file if legal else None)
    robots = robots_path or from_policy(legal.robots_file if legal else None)
    out: dict[str, tuple[str, str]] = {}
    for name, path in (("terms", terms), ("robots", robots)):
        if path is not None:
            try:
                out[name] = (str(path), path.read_text(encoding="utf-8", errors="replace"))
            except OSError as exc:
                raise LegalError(f"cannot read the {name} file {path}: {exc.strerror or exc}") from exc
        elif name == "terms":
            out[name] = ("the demo platform's terms (no legal.terms_file in the policy)",
                         DEMO_TERMS.read_text(encoding="utf-8"))
        else:
            from scrapeshield.demo.app import ROBOTS_TXT

            out[name] = ("the demo platform's /robots.txt (no legal.robots_file in the policy)", ROBOTS_TXT)
    return out


def _slice(ledger: Ledger, campaign_id: str, clients: list[str]) -> list[Entry]:
    """Entries about the campaign: its states, its clients' windows, audit rows naming either."""
    subjects = set(clients) | {campaign_id}
    entries = [e for e in ledger.entries(subjects=subjects) if e.kind in ("window", "campaign")]
    for entry in ledger.entries(kind="audit"):
        text = canonical(entry.body).decode("utf-8")
        if campaign_id in text or any(client in text for client in clients):
            entries.append(entry)
    return sorted(entries, key=lambda e: e.seq)


def _end(ledger: Ledger, key: Ed25519PrivateKey, now: float, last: int) -> Checkpoint | None:
    """The signed head the pack ends at: the first checkpoint at or after the campaign's last
    entry (so the pack does not carry the whole ledger since), else the current head, signed now."""
    later = ledger.checkpoints(first=last) if last else []
    if later and later[0].key_id == keys.key_id(key.public_key()):
        return later[0]
    return ledger.checkpoint(key, now, force=True)


def export_pack(db: Database, campaign_id: str, out_path: Path | str, signing_key: Ed25519PrivateKey,
                *, policy: CompiledPolicy | None = None, clock: Clock | None = None,
                terms_path: Path | None = None, robots_path: Path | None = None,
                actor: str | None = "cli", policy_dir: Path | None = None) -> dict[str, Any]:
    """Write the pack. The export goes on the audit trail (and so into the ledger) as
    ``evidence.export`` by ``actor``; ``actor=None``: the caller audits it itself."""
    clock = clock or SystemClock()
    now = clock.now()
    campaign = campaign_row(db, campaign_id)
    if isinstance(campaign.get("reasons"), str):
        try:
            campaign["reasons"] = json.loads(str(campaign["reasons"]))
        except ValueError:
            campaign["reasons"] = [campaign["reasons"]]
    clients = campaign_clients(db, campaign_id)
    ledger = Ledger(db)
    chosen = _slice(ledger, campaign_id, clients)
    chosen_seqs = {e.seq for e in chosen}
    head = _end(ledger, signing_key, now, max(chosen_seqs, default=0))
    first = min(chosen_seqs) if chosen else (head.seq if head else 0)
    run = ledger.entries(first, head.seq) if head else []
    lines = [json.dumps(e.to_dict() if e.seq in chosen_seqs else
                        {"seq": e.seq, "withheld": True, "digest": e.digest, "prev_hash": e.prev_hash,
                         "hash": e.hash}, sort_keys=True, ensure_ascii=False) for e in run]
    data_map = DataMap.from_policy(policy)
    texts = _texts(policy, terms_path, robots_path, policy_dir)
    facts = campaign_facts(campaign, chosen, data_map, texts)
    info = {"created_at": now, "key_id": keys.key_id(signing_key.public_key()),
            "first_seq": run[0].seq if run else 0, "last_seq": head.seq if head else 0}
    doc = evidence_document(facts, info)
    files: dict[str, bytes] = {
        "report.html": to_html(doc).encode("utf-8"),
        "report.pdf": to_pdf(doc),
        "facts.json": json.dumps(facts, indent=1, sort_keys=True, default=str).encode("utf-8"),
        "ledger.jsonl": "".join(line + "\n" for line in lines).encode("utf-8"),
        "checkpoint.json": json.dumps(head.to_dict() if head else None, indent=1).encode("utf-8"),
        "terms.txt": texts["terms"][1].encode("utf-8"),
        "robots.txt": texts["robots"][1].encode("utf-8"),
        "public-key.pem": keys.public_pem(signing_key).encode("ascii"),
    }
    manifest = {
        "format": FORMAT, "campaign": campaign_id, "created_at": now, "key_id": info["key_id"],
        "ledger": {"first_seq": info["first_seq"], "last_seq": info["last_seq"],
                   "entries_in_full": len(chosen_seqs),
                   "prev_hash": run[0].prev_hash if run else None,
                   "head_hash": head.hash if head else None},
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    files["manifest.json"] = manifest_bytes
    files["manifest.sig"] = signing_key.sign(manifest_bytes).hex().encode("ascii") + b"\n"
    out = Path(out_path)
    try:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
    except OSError as exc:
        raise LegalError(f"cannot write {out}: {exc.strerror or exc}") from exc
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    if actor is not None:
        db.audit(now, actor, "evidence.export", {"campaign": campaign_id, "head_seq": info["last_seq"],
                                                 "manifest_sha256": manifest_sha256})
    return {"path": str(out), "campaign": campaign_id, "entries": len(chosen_seqs),
            "first_seq": info["first_seq"], "last_seq": info["last_seq"],
            "head_hash": head.hash if head else None, "key_id": info["key_id"],
            "manifest_sha256": manifest_sha256, "files": manifest["files"]}


def verify_pack(path: Path | str, public_key: Ed25519PublicKey | None = None) -> VerifyResult:
    """Check every hash, the chain and the signatures. Without ``public_key`` the key inside the
    pack is used, which proves integrity but not origin (a problem says so)."""
    try:
        with zipfile.ZipFile(Path(path)) as archive:
            names = archive.namelist()
            size = sum(info.file_size for info in archive.infolist())
            if size > MAX_PACK_BYTES:  # a zip bomb, not a pack: refuse before inflating it
                return VerifyResult(False, [f"the zip would unpack to {size:,} bytes, more than the "
                                            f"{MAX_PACK_BYTES:,} a pack may hold"])
            if len(names) != len(set(names)):
                dupes = sorted({n for n in names if names.count(n) > 1})
                return VerifyResult(False, [f"the zip holds more than one copy of {', '.join(dupes)}"])
            files = {name: archive.read(name) for name in names}
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        return VerifyResult(False, [f"not a readable zip file: {exc}"])
    except Exception as exc:  # zlib.error and friends: a damaged member
        return VerifyResult(False, [f"a file inside the zip is damaged: {exc}"])
    problems, manifest = verify_files(files, public_key)
    ledger_info = manifest.get("ledger") if isinstance(manifest, dict) else None
    entries = ledger_info.get("entries_in_full", 0) if isinstance(ledger_info, dict) else 0
    return VerifyResult(not problems, problems, str(manifest.get("key_id", "")) if manifest else "",
                        str(manifest.get("campaign", "")) if manifest else "", int(entries or 0))
