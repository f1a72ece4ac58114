"""Checking an evidence pack's files: signature, file hashes, ledger chain, signed head.

Every problem names its place: the file, or the ledger entry by ``seq`` (and line), so a
court can see exactly what differs from what the platform signed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from scrapeshield.errors import ConfigError
from scrapeshield.legal import keys
from scrapeshield.legal.ledger import canonical, chain_hash, checkpoint_message, content, sha256

SIGNED = ("manifest.json", "manifest.sig")


def verify_files(files: dict[str, bytes], given: Ed25519PublicKey | None) -> tuple[list[str], dict[str, Any]]:
    problems: list[str] = []
    if "manifest.json" not in files:
        return ["manifest.json is missing: nothing in the pack can be checked"], {}
    try:
        manifest = json.loads(files["manifest.json"])
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise ValueError("not a manifest")
    except ValueError:
        manifest = {}
        problems.append("manifest.json was altered: it is no longer a valid manifest")
    key = _key(files, given, problems)
    if key is not None:
        _check_signature(files, manifest, key, given is not None, problems)
    listed: dict[str, Any] = manifest.get("files", {}) if manifest else {}
    for name, digest in sorted(listed.items()):
        if name not in files:
            problems.append(f"{name} is missing from the pack")
        elif hashlib.sha256(files[name]).hexdigest() != digest:
            problems.append(f"{name} was altered: its SHA-256 does not match the signed manifest")
    for name in sorted(set(files) - set(listed) - set(SIGNED)):
        if manifest:
            problems.append(f"{name} was added: it is not in the signed manifest")
    if manifest and "ledger.jsonl" in files:
        problems += check_ledger(files["ledger.jsonl"], manifest.get("ledger") or {})
        if key is not None:
            problems += check_head(files.get("checkpoint.json"), manifest.get("ledger") or {}, key)
    return problems, manifest


def _key(files: dict[str, bytes], given: Ed25519PublicKey | None,
         problems: list[str]) -> Ed25519PublicKey | None:
    inside: Ed25519PublicKey | None = None
    try:
        inside = keys.load_public(files.get("public-key.pem", b""))
    except ConfigError:
        if given is None:
            problems.append("public-key.pem is missing or altered, and no public key was given: "
                            "the signature cannot be checked")
    if given is not None and inside is not None and keys.key_id(inside) != keys.key_id(given):
        problems.append(f"public-key.pem in the pack is key {keys.key_id(inside)}, not the given key "
                        f"{keys.key_id(given)}")
    return given or inside


def _check_signature(files: dict[str, bytes], manifest: dict[str, Any], key: Ed25519PublicKey,
                     given: bool, problems: list[str]) -> None:
    raw = files.get("manifest.sig", b"")
    signature = raw.decode("ascii", errors="replace").strip()
    if not signature:
        problems.append("manifest.sig is missing: the pack is not signed")
        return
    if raw != signature.encode("ascii", errors="replace") + b"\n":  # exactly as written: hex + newline
        problems.append("manifest.sig was altered: it is not the signature as written")
        return
    if keys.verify(key, signature, files["manifest.json"]):
        return
    signer = str(manifest.get("key_id", "")) if manifest else ""
    if given and signer and signer != keys.key_id(key):
        problems.append(f"wrong key: the pack says it was signed by key {signer}, and the signature "
                        f"does not verify with the given key {keys.key_id(key)}")
    else:
        problems.append(f"signature does not verify with key {keys.key_id(key)}: manifest.json or "
                        "manifest.sig was altered (or the pack was signed by another key)")


def check_ledger(raw: bytes, info: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    entries: list[tuple[int, dict[str, Any]]] = []
    text = raw.decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            entry = json.loads(line)
            int(entry["seq"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"ledger.jsonl line {number} was altered: it is not a ledger entry")
            continue
        entries.append((number, entry))
    first, last = int(info.get("first_seq") or 0), int(info.get("last_seq") or 0)
    seqs = [int(e["seq"]) for _, e in entries]
    for (line_a, a), (line_b, b) in zip(entries, entries[1:], strict=False):
        if int(b["seq"]) <= int(a["seq"]):
            problems.append(f"ledger entries reordered: seq {b['seq']} (line {line_b}) comes after "
                            f"seq {a['seq']} (line {line_a})")
    present = set(seqs)
    if last:
        for seq in range(first, last + 1):
            if seq not in present:
                problems.append(f"ledger entry seq {seq} was removed")
    for seq in sorted(present):
        if seqs.count(seq) > 1:
            problems.append(f"ledger entry seq {seq} appears {seqs.count(seq)} times")
        if last and not first <= seq <= last:
            problems.append(f"ledger entry seq {seq} was added: outside the signed range {first}-{last}")
    prev = info.get("prev_hash")
    for number, entry in sorted(entries, key=lambda item: int(item[1]["seq"])):
        seq = entry["seq"]
        digest = str(entry.get("digest", ""))
        if not entry.get("withheld"):
            try:
                mine = sha256(canonical(content(entry["seq"], entry["ts"], entry["kind"], entry["subject"],
                                                entry["ref"], entry["body"])))
            except (KeyError, TypeError, ValueError):
                mine = ""
            if mine != digest:
                problems.append(f"ledger entry seq {seq} (line {number}) was altered: its content does "
                                "not match its digest")
        if prev is not None and entry.get("prev_hash") != prev:
            problems.append(f"ledger entry seq {seq} (line {number}) does not follow the entry before it "
                            "in the chain")
        if chain_hash(str(entry.get("prev_hash", "")), digest) != entry.get("hash"):
            problems.append(f"ledger entry seq {seq} (line {number}) was altered: its hash is wrong")
        prev = entry.get("hash")
    if entries and info.get("head_hash") and prev != info.get("head_hash"):
        problems.append("ledger.jsonl does not end at the signed head of the ledger")
    return problems


def check_head(raw: bytes | None, info: dict[str, Any], key: Ed25519PublicKey) -> list[str]:
    if not info.get("head_hash"):
        return []
    try:
        head = json.loads(raw or b"")
        message = checkpoint_message(int(head["seq"]), float(head["ts"]), str(head["hash"]))
        signature = str(head["signature"])
    except (ValueError, KeyError, TypeError):
        return ["checkpoint.json was altered: it is not a signed checkpoint"]
    problems = []
    if head["hash"] != info["head_hash"] or int(head["seq"]) != int(info.get("last_seq") or 0):
        problems.append("checkpoint.json names another head than the manifest")
    if not keys.verify(key, signature, message):
        problems.append(f"checkpoint.json: the signature of the ledger head does not verify with key "
                        f"{keys.key_id(key)}")
    return problems
