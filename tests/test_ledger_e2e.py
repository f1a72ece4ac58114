"""The ledger of a real `scrapeshield demo` process: traffic over HTTP, shutdown, then the
stored chain checks out from the command line and counts every request that was made."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
from servers import start_cli

from scrapeshield.db.store import Database
from scrapeshield.legal import keys
from scrapeshield.legal.ledger import Ledger


def test_demo_process_ledger_survives_shutdown_and_verifies(tmp_path: Path) -> None:
    server = start_cli(["demo", "--users", "500", "--seed", "3"], tmp_path)
    statuses: dict[int, int] = {}
    try:
        with httpx.Client(base_url=server.url, timeout=10,
                          headers={"user-agent": "python-httpx/0.28.1"}) as client:
            for user_id in range(1, 61):
                code = client.get(f"/api/v1/users/{user_id}").status_code
                statuses[code] = statuses.get(code, 0) + 1
    finally:
        server.stop()  # SIGTERM: the shield writes its open ledger windows and signs the head
    assert statuses.get(200, 0) < 60 and sum(statuses.values()) == 60  # the walker was contained
    assert stat.S_IMODE(os.stat(tmp_path / keys.KEY_FILE).st_mode) == 0o600
    db = Database(f"sqlite:///{tmp_path / 'scrapeshield.db'}")
    try:
        ledger = Ledger(db)
        totals = ledger.entries(kind="totals")
        assert sum(e.body["requests"] for e in totals) == 60
        windows = ledger.entries(kind="window")
        served = {r for e in windows for r in e.body["records_taken"]}
        assert len(served) == statuses.get(200, 0)
        assert ledger.checkpoints()
    finally:
        db.close()
    done = subprocess.run([sys.executable, "-m", "scrapeshield", "evidence", "check-ledger", "--data-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ledger OK:" in done.stdout and "signed checkpoints" in done.stdout
    pem = subprocess.run([sys.executable, "-m", "scrapeshield", "evidence", "public-key", "--data-dir",
                          str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert pem.stdout == keys.public_pem(keys.load_or_create(tmp_path))
    # The platform can say which pseudonym in its evidence is which address.
    named = subprocess.run([sys.executable, "-m", "scrapeshield", "evidence", "pseudonym", "127.0.0.1",
                            "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    pseudonym = named.stdout.splitlines()[0].split("\t")[1]
    assert {e.subject for e in windows} == {pseudonym}
    bad = subprocess.run([sys.executable, "-m", "scrapeshield", "evidence", "pseudonym", "not-an-ip",
                          "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "is not an IP address" in bad.stderr


def test_an_unreadable_signing_key_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / keys.KEY_FILE).write_text("not a key\n")
    done = subprocess.run([sys.executable, "-m", "scrapeshield", "demo", "--data-dir", str(tmp_path),
                           "--port", "0", "--admin-port", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "cannot read the signing key" in done.stderr and "Traceback" not in done.stderr
