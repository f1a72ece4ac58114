"""`scrapeshield replay` end to end: a generated log with known scrapers and people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from scrapeshield.campaigns.store import list_campaigns
from scrapeshield.cli import main
from scrapeshield.db.store import Database
from scrapeshield.demo.population import Population, export_dataset
from scrapeshield.events import Pseudonymiser
from scrapeshield.forensics.generate import Truth, generate
from scrapeshield.settings import Settings

USERS = 3000
SEED = 9


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth, Path]:
    where = tmp_path_factory.mktemp("replay-cli")
    log = where / "access.log"
    truth = generate(log, people=250, hours=4, scrapers=3, seed=SEED, users=USERS)
    return log, truth, where


def cli(*args: str, stdout_only: bool = False) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout if stdout_only else result.output


def as_json(*args: str) -> dict[str, Any]:
    code, out = cli(*args, "--json", stdout_only=True)
    assert code == 0, out
    data: dict[str, Any] = json.loads(out)
    return data


def test_replay_finds_the_known_scrapers_and_no_person(scene: tuple[Path, Truth, Path]) -> None:
    log, truth, where = scene
    data_dir = where / "data"
    report = as_json("replay", str(log), "--data-dir", str(data_dir), "--show-ips")
    contained = {c["ip"] for c in report["contained"]}
    assert truth.must_find() <= contained
    assert not contained & truth.people
    assert report["lines"] == truth.lines and report["bad_lines"] == 0
    # Scrapers of records were served fewer of them under the shield (a list pager reads none).
    for client in report["contained"]:
        if client["ip"] in truth.must_find() and client["records_taken"]:
            assert client["records_taken_under_shield"] < client["records_taken"]
    sizing = report["sizing"]
    assert sizing["records_taken_by_contained_clients"] > 1000
    # Incidents are the contained clients grouped by campaign: together, every contained one.
    assert sum(i["clients"] for i in report["incidents"]) == report["clients_contained"]
    assert (
        max(i["records_taken"] for i in report["incidents"]) <= sizing["records_taken_by_contained_clients"]
    )
    assert {"phone", "email"} <= set(sizing["categories"])


def test_clients_are_pseudonyms_unless_ips_are_asked_for(scene: tuple[Path, Truth, Path]) -> None:
    log, truth, where = scene
    data_dir = where / "data"
    report = as_json("replay", str(log), "--data-dir", str(data_dir))
    text = json.dumps(report)
    assert not any(ip in text for ip in truth.scrapers)
    assert not any(ip in text for ip in list(truth.people)[:50])
    pseudonymise = Pseudonymiser(Settings.resolve(str(data_dir)).derived_key("pseudonym"))
    assert {pseudonymise(ip) for ip in truth.must_find()} <= {c["client"] for c in report["contained"]}


def test_human_summary_names_what_was_found(scene: tuple[Path, Truth, Path]) -> None:
    log, _, where = scene
    code, out = cli("replay", str(log), "--data-dir", str(where / "data"))
    assert code == 0
    lines = log.read_bytes().count(b"\n")
    assert f"Replayed {lines:,} lines" in out
    assert "contained" in out and "Records taken by contained clients" in out
    assert "headers.order" in out  # the signals a log cannot carry are named


def test_store_puts_events_and_campaigns_in_the_database(scene: tuple[Path, Truth, Path]) -> None:
    log, _, where = scene
    url = f"sqlite:///{where / 'shield.db'}"
    first = as_json("replay", str(log), "--data-dir", str(where / "data"), "--db", url)
    again = as_json("replay", str(log), "--data-dir", str(where / "data"), "--db", url)
    assert first["stored"]["events"] > 1000 and first["stored"]["campaigns"] >= 1
    db = Database(url)
    try:
        stored = list_campaigns(db, limit=1000)
        events = db.count_events()
    finally:
        db.close()
    assert {c["id"] for c in stored} == {c["id"] for c in first["campaigns"]}
    assert events == first["stored"]["events"]  # the second run added nothing twice
    assert again["stored"]["events"] == first["stored"]["events"]


def test_assessment_of_what_was_taken(scene: tuple[Path, Truth, Path]) -> None:
    log, _, where = scene
    users = where / "users.jsonl"
    export_dataset(Population.generate(USERS, SEED), users)
    report = as_json("replay", str(log), "--data-dir", str(where / "data"), "--subjects", str(users))
    assessment = report["assessment"]
    assert assessment["subjects"] > 500
    assert assessment["records_taken"] == report["sizing"]["records_taken_by_contained_clients"]
    assert assessment["jurisdictions"]


def test_nothing_readable_is_an_error_with_the_reasons(tmp_path: Path) -> None:
    junk = tmp_path / "junk.log"
    junk.write_bytes(b"\x00\x01\x02 not a log\nnor this\n")
    code, out = cli("replay", str(junk), str(tmp_path / "absent.log"), "--data-dir", str(tmp_path / "d"))
    assert code == 1
    assert "line 1" in out and "line 2" in out and "cannot open" in out
    code, out = cli("replay", str(junk), "--format", "regex:(?P<ip>", "--data-dir", str(tmp_path / "d"))
    assert code != 0 and "does not compile" in out and "Traceback" not in out


def test_replay_does_not_offer_a_state_it_would_ignore() -> None:
    """A replay's counters are its own, in memory: the shared --state option is not taken."""
    code, out = cli("replay", "--help")
    assert code == 0 and "--store" in out and "--policy" in out
    assert "--state" not in out
    code, out = cli("replay", "x.log", "--state", "redis://127.0.0.1:6379/0")
    assert code == 2 and "No such option" in out
