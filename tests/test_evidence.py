"""Evidence packs: a clean pack verifies; any altered byte, a removed or reordered ledger entry,
or a wrong key makes verification fail with a message naming exactly what."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from legal_scenario import CAMPAIGN, HUMAN, ROTATING, Scenario

from scrapeshield.db.store import Database
from scrapeshield.legal import keys
from scrapeshield.legal.errors import LegalError
from scrapeshield.legal.evidence import export_pack, verify_pack
from scrapeshield.legal.verify import SIGNED

Pack = tuple[Path, Scenario, dict[str, object]]
FILES = ["report.html", "report.pdf", "facts.json", "ledger.jsonl", "checkpoint.json", "terms.txt",
         "robots.txt", "public-key.pem", "manifest.json", "manifest.sig"]


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Pack:
    tmp = tmp_path_factory.mktemp("pack")
    s = Scenario(Database(f"sqlite:///{tmp / 'db.sqlite'}"), tmp)
    s.run()
    info = export_pack(s.db, CAMPAIGN, tmp / "pack.zip", s.key, policy=s.policy, clock=s.clock)
    return tmp / "pack.zip", s, info


def read(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_clean_pack_verifies(pack: Pack) -> None:
    path, s, info = pack
    assert sorted(read(path)) == sorted(FILES)
    result = verify_pack(path, s.key.public_key())
    assert result.ok, result.problems
    assert result.campaign == CAMPAIGN and result.key_id == keys.key_id(s.key.public_key())
    assert verify_pack(path).ok  # with the key inside the pack


def test_pack_holds_the_campaign_and_withholds_other_clients(
        pack: Pack) -> None:
    path, s, _ = pack
    files = read(path)
    lines = [json.loads(line) for line in files["ledger.jsonl"].decode().splitlines()]
    human = s.pseudonymise(HUMAN)
    shown = {e["subject"] for e in lines if not e.get("withheld")}
    assert human not in shown and human not in files["ledger.jsonl"].decode()
    assert s.pseudonymise(ROTATING[0]) in shown and CAMPAIGN in shown
    assert any(e.get("withheld") for e in lines)  # the person's entries: digests only
    facts = json.loads(files["facts.json"])
    expected_taken = s.served()
    assert facts["totals"]["records_taken"] == len(expected_taken)
    member_requests = sum(1 for ctx, _ in s.decisions if ctx.ip != HUMAN)
    assert facts["totals"]["requests"] == member_requests
    assert facts["categories"]["contact"] == len(expected_taken)  # the JSON profile has phone and e-mail
    assert "Disallow: /api/" in files["robots.txt"].decode()
    assert "by automated\n   means" in files["terms.txt"].decode()
    html = files["report.html"].decode()
    assert f"{member_requests:,}" in html and CAMPAIGN in html and "pseudonym" in html


def _flip(data: bytes, at: int) -> bytes:
    changed = bytearray(data)
    changed[at] = changed[at] ^ 0x01
    return bytes(changed)


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("where", [0.0, 0.37, 0.5, 0.83, 1.0])
def test_any_altered_byte_is_found_and_the_file_named(
        pack: Pack, tmp_path: Path, name: str, where: float) -> None:
    path, s, _ = pack
    files = read(path)
    at = min(int(len(files[name]) * where), len(files[name]) - 1)
    files[name] = _flip(files[name], at)
    result = verify_pack(write(tmp_path / "t.zip", files), s.key.public_key())
    assert not result.ok
    if name in SIGNED:
        assert any("signature does not verify" in p or f"{name} was altered" in p
                   for p in result.problems), result.problems
    else:
        assert f"{name} was altered: its SHA-256 does not match the signed manifest" in result.problems


def _ledger_lines(files: dict[str, bytes]) -> list[str]:
    return files["ledger.jsonl"].decode().splitlines()


def _with_ledger(pack: Pack, tmp_path: Path, edit: Callable[[list[str]], None]) -> list[str]:
    """Edit ledger.jsonl's lines in place (nothing else) and return what verify says."""
    path, s, _ = pack
    files = read(path)
    lines = _ledger_lines(files)
    edit(lines)
    files["ledger.jsonl"] = ("\n".join(lines) + "\n").encode()
    return verify_pack(write(tmp_path / "t.zip", files), s.key.public_key()).problems


def test_altered_ledger_entry_is_named_by_seq(pack: Pack, tmp_path: Path) -> None:
    changed: dict[str, int] = {}

    def edit(lines: list[str]) -> None:
        index = next(i for i, line in enumerate(lines) if '"kind": "window"' in line)
        entry = json.loads(lines[index])
        entry["body"]["requests"] += 100  # valid JSON, a different fact
        lines[index] = json.dumps(entry, sort_keys=True)
        changed.update(seq=entry["seq"], line=index + 1)

    problems = _with_ledger(pack, tmp_path, edit)
    assert f"ledger entry seq {changed['seq']} (line {changed['line']}) was altered: its content does " \
           "not match its digest" in problems
    assert "ledger.jsonl was altered: its SHA-256 does not match the signed manifest" in problems


def test_removed_ledger_entry_is_named(pack: Pack, tmp_path: Path) -> None:
    gone = json.loads(_ledger_lines(read(pack[0]))[2])

    def remove(lines: list[str]) -> None:
        del lines[2]

    problems = _with_ledger(pack, tmp_path, remove)
    assert f"ledger entry seq {gone['seq']} was removed" in problems


def test_reordered_ledger_entries_are_named(pack: Pack, tmp_path: Path) -> None:
    original = _ledger_lines(read(pack[0]))
    a, b = json.loads(original[3])["seq"], json.loads(original[4])["seq"]

    def swap(lines: list[str]) -> None:
        lines[3], lines[4] = lines[4], lines[3]

    problems = _with_ledger(pack, tmp_path, swap)
    assert f"ledger entries reordered: seq {b} (line 4) comes after seq {a} (line 5)" not in problems
    assert f"ledger entries reordered: seq {a} (line 5) comes after seq {b} (line 4)" in problems


def test_re_signed_by_someone_else_is_a_wrong_key(pack: Pack,
                                                  tmp_path: Path) -> None:
    """A forger edits the ledger, recomputes the manifest and signs with their own key."""
    path, s, _ = pack
    files = read(path)
    lines = _ledger_lines(files)
    del lines[1]
    files["ledger.jsonl"] = ("\n".join(lines) + "\n").encode()
    forger = keys.load_or_create(tmp_path)
    manifest = json.loads(files["manifest.json"])
    manifest["files"]["ledger.jsonl"] = hashlib.sha256(files["ledger.jsonl"]).hexdigest()
    files["public-key.pem"] = keys.public_pem(forger).encode()
    manifest["files"]["public-key.pem"] = hashlib.sha256(files["public-key.pem"]).hexdigest()
    files["manifest.json"] = json.dumps(manifest).encode()
    files["manifest.sig"] = forger.sign(files["manifest.json"]).hex().encode() + b"\n"
    problems = verify_pack(write(tmp_path / "t.zip", files), s.key.public_key()).problems
    platform, other = keys.key_id(s.key.public_key()), keys.key_id(forger.public_key())
    assert f"public-key.pem in the pack is key {other}, not the given key {platform}" in problems
    assert any(p.startswith("wrong key") or "signature does not verify" in p for p in problems), problems
    assert any("was removed" in p for p in problems)


def test_verifying_with_a_wrong_key(pack: Pack, tmp_path: Path) -> None:
    path, s, _ = pack
    stranger = keys.load_or_create(tmp_path)
    result = verify_pack(path, stranger.public_key())
    platform, other = keys.key_id(s.key.public_key()), keys.key_id(stranger.public_key())
    assert not result.ok
    assert (f"wrong key: the pack says it was signed by key {platform}, and the signature does not "
            f"verify with the given key {other}") in result.problems


def test_added_file_and_missing_file_are_named(pack: Pack,
                                               tmp_path: Path) -> None:
    path, s, _ = pack
    files = read(path)
    files["extra.txt"] = b"planted"
    del files["terms.txt"]
    problems = verify_pack(write(tmp_path / "t.zip", files), s.key.public_key()).problems
    assert "extra.txt was added: it is not in the signed manifest" in problems
    assert "terms.txt is missing from the pack" in problems


def test_not_a_zip_is_a_clear_failure(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    result = verify_pack(bad)
    assert not result.ok and result.problems[0].startswith("not a readable zip file")
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("hello.txt", "no manifest")
    bad.write_bytes(raw.getvalue())
    assert verify_pack(bad).problems == ["manifest.json is missing: nothing in the pack can be checked"]


def test_command_line_export_and_verify(pack: Pack, tmp_path: Path) -> None:
    _, s, _ = pack
    data_dir = s.data_dir
    out = tmp_path / "cli.zip"
    run = [sys.executable, "-m", "scrapeshield"]
    done = subprocess.run([*run, "evidence", "export", "--campaign", CAMPAIGN, "--out", str(out),
                           "--data-dir", str(data_dir), "--db", s.db.url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"campaign {CAMPAIGN}" in done.stdout
    pem = tmp_path / "platform.pem"
    pem.write_text(keys.public_pem(s.key))
    ok = subprocess.run([*run, "evidence", "verify", str(out), "--public-key", str(pem)],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ": OK - campaign" in ok.stdout, ok.stderr
    files = read(out)
    files["robots.txt"] = files["robots.txt"].replace(b"Disallow: /api/", b"Allow: /api/   ")
    bad = subprocess.run([*run, "evidence", "verify", str(write(tmp_path / "bad.zip", files)),
                          "--public-key", str(pem)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "robots.txt was altered" in bad.stderr and "Traceback" not in bad.stderr
    missing = subprocess.run([*run, "evidence", "export", "--campaign", "cmp-nope", "--out", str(out),
                              "--data-dir", str(data_dir), "--db", s.db.url],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "no campaign 'cmp-nope'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_the_sample_pack_in_the_docs_verifies() -> None:
    samples = Path(__file__).resolve().parents[1] / "docs" / "samples"
    public = keys.load_public((samples / "evidence-public-key.pem").read_bytes())
    result = verify_pack(samples / "evidence-pack.zip", public)
    assert result.ok, result.problems



def test_a_campaign_the_ledger_has_not_seen_yet(tmp_path: Path) -> None:
    s = Scenario(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), tmp_path)
    s.scrape(ROTATING[0], range(1, 4))
    s.add_campaign(CAMPAIGN, (ROTATING[0],))  # detected before its first window closed
    info = export_pack(s.db, CAMPAIGN, tmp_path / "early.zip", s.key, policy=s.policy, clock=s.clock)
    assert info["entries"] == 0
    assert verify_pack(tmp_path / "early.zip", s.key.public_key()).ok
    assert "no request summaries of this campaign" in read(tmp_path / "early.zip")["report.html"].decode()


def test_terms_and_robots_in_force_come_from_the_policy(tmp_path: Path) -> None:
    from scrapeshield.policy.loader import default_policy_text, load_policy

    (tmp_path / "terms.html").write_text("<h1>Terms</h1><p>No scraping, version 7.</p>")
    (tmp_path / "robots.txt").write_text("User-agent: *\nDisallow: /\n")
    text = default_policy_text().replace("terms_file: null", "terms_file: terms.html").replace(
        "robots_file: null", "robots_file: robots.txt")
    (tmp_path / "policy.yaml").write_text(text)
    s = Scenario(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), tmp_path)
    s.run()
    export_pack(s.db, CAMPAIGN, tmp_path / "p.zip", s.key, policy=load_policy(tmp_path / "policy.yaml"),
                clock=s.clock, policy_dir=tmp_path)
    files = read(tmp_path / "p.zip")
    assert files["terms.txt"] == b"<h1>Terms</h1><p>No scraping, version 7.</p>"
    assert files["robots.txt"] == b"User-agent: *\nDisallow: /\n"
    facts = json.loads(files["facts.json"])
    assert facts["texts"]["terms"]["source"] == str(tmp_path / "terms.html")
    assert hashlib.sha256(files["terms.txt"]).hexdigest() == facts["texts"]["terms"]["sha256"]
    with pytest.raises(LegalError, match="cannot read the terms file"):
        export_pack(s.db, CAMPAIGN, tmp_path / "q.zip", s.key, clock=s.clock,
                    terms_path=tmp_path / "missing.txt")


def test_pack_ends_at_the_first_signed_head_after_the_campaign(tmp_path: Path) -> None:
    from scrapeshield.legal.ledger import NewEntry

    s = Scenario(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), tmp_path)
    s.run()  # ends with a signed head just after the campaign's entries
    signed = s.ledger.checkpoints()[-1].seq
    for n in range(3):  # later traffic of other clients, signed again
        s.ledger.append([NewEntry("window", f"p:other{n}-{i}", {"requests": 1}) for i in range(50)],
                        s.clock.now())
        s.clock.advance(700)
        s.ledger.checkpoint(s.key, s.clock.now())
    info = export_pack(s.db, CAMPAIGN, tmp_path / "p.zip", s.key, policy=s.policy, clock=s.clock)
    assert info["last_seq"] == signed < s.ledger.head()[0]  # type: ignore[index]
    assert verify_pack(tmp_path / "p.zip", s.key.public_key()).ok


def test_a_platform_that_keeps_raw_addresses_gets_them_in_the_pack(tmp_path: Path) -> None:
    s = Scenario(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), tmp_path, pseudonymise_ips=False)
    s.run()
    export_pack(s.db, CAMPAIGN, tmp_path / "raw.zip", s.key, policy=s.policy, clock=s.clock)
    files = read(tmp_path / "raw.zip")
    html = files["report.html"].decode()
    assert "policy keeps raw addresses" in html and "100.65.1.0/24" in html
    assert HUMAN not in files["ledger.jsonl"].decode()  # other clients stay withheld
    assert verify_pack(tmp_path / "raw.zip", s.key.public_key()).ok
