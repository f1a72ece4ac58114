"""``scrapeshield replay FILE…``: forensics on access logs (C9)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from scrapeshield.errors import ScrapeshieldError


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "log_format",
    default="auto",
    show_default=True,
    help="auto (per file: JSON lines or combined), combined, json, "
    "'regex:PATTERN' (named groups ip, time, method, target, status, referer, ua) "
    "or 'nginx:LOG_FORMAT' (nginx log_format syntax).",
)
@click.option(
    "--time-format",
    default=None,
    help="strftime format of the time field, or 'iso' / 'epoch' (custom formats).",
)
@click.option(
    "--json-field",
    "json_fields",
    multiple=True,
    metavar="FIELD=KEY",
    help="JSON lines: read FIELD (ip, time, method, target, request, status, referer, ua) "
    "from KEY (repeatable).",
)
@click.option(
    "--exact", is_flag=True, help="Decide line by line with the real engine (slow) instead of the batch path."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--show-ips", is_flag=True, help="Also show raw client addresses (default: pseudonyms).")
@click.option(
    "--db", "db_url", default=None, help="Store events and campaigns in this database (SQLAlchemy URL)."
)
@click.option("--store", is_flag=True, help="Store events and campaigns in the data dir's database.")
@click.option(
    "--subjects",
    "subjects_path",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="Users as JSON lines (e.g. demo --export-dataset): assess the records taken as a breach.",
)
@click.option(
    "--residence-field",
    default="country",
    show_default=True,
    help="The users' field that says where they live.",
)
@click.option(
    "--policy",
    "policy_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Policy YAML file (default: the embedded policy).",
)
@click.option(
    "--data-dir",
    default=None,
    envvar="SCRAPESHIELD_DATA_DIR",
    help="Data directory (pseudonym key, default database).",
)
def replay(
    files: tuple[str, ...],
    log_format: str,
    time_format: str | None,
    json_fields: tuple[str, ...],
    exact: bool,
    as_json: bool,
    show_ips: bool,
    db_url: str | None,
    store: bool,
    subjects_path: str | None,
    residence_field: str,
    policy_path: str | None,
    data_dir: str | None,
) -> None:
    """Replay access logs through the detection engine on their own timestamps.

    Finds the clients the shield would have contained, groups them into campaigns and
    sizes what was taken (distinct personal records served, per the policy's route map).
    Bad lines are reported by number and skipped.
    """
    try:
        report = _run(
            files,
            log_format,
            time_format,
            json_fields,
            exact,
            show_ips,
            db_url,
            store,
            subjects_path,
            residence_field,
            policy_path,
            data_dir,
        )
    except ScrapeshieldError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        from scrapeshield.forensics.report import text

        click.echo(text(report))
        for line in report.get("notes", []):
            click.echo(line)
    if report["good_lines"] == 0:
        sys.exit(1)


def _run(
    files: tuple[str, ...],
    log_format: str,
    time_format: str | None,
    json_fields: tuple[str, ...],
    exact: bool,
    show_ips: bool,
    db_url: str | None,
    store: bool,
    subjects_path: str | None,
    residence_field: str,
    policy_path: str | None,
    data_dir: str | None,
) -> dict[str, Any]:
    from scrapeshield.events import Pseudonymiser
    from scrapeshield.forensics import formats, report
    from scrapeshield.forensics.findings import find
    from scrapeshield.forensics.replay import replay as run_replay
    from scrapeshield.policy.loader import load_policy
    from scrapeshield.settings import Settings

    fields: dict[str, str] = {}
    for item in json_fields:
        name, sep, key = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--json-field takes FIELD=KEY, not {item!r}")
        fields[name] = key
    fmt = (
        None
        if log_format == "auto" and not fields
        else formats.resolve("json" if log_format == "auto" else log_format, time_format, fields)
    )
    policy = load_policy(policy_path)
    settings = Settings.resolve(data_dir, db_url, "memory", policy_path)
    pseudonymise = Pseudonymiser(settings.derived_key("pseudonym"))
    run = run_replay(files, policy, fmt, exact=exact)
    found = find(run.decided, policy, pseudonymise)
    out = report.build(run, found, pseudonymise, show_ips=show_ips)
    notes: list[str] = []
    if subjects_path:
        out["assessment"] = _assess(found, run.files, subjects_path, residence_field, policy)
        a = out["assessment"]
        notes.append(
            f"Breach assessment: {a['subjects']} data subjects, "
            f"{len(a['jurisdictions'])} jurisdiction(s); see --json for the tests and deadlines"
        )
    if db_url or store:
        from scrapeshield.db.store import Database
        from scrapeshield.forensics.store import store as store_findings

        db = Database(settings.db_url)
        try:
            events, campaigns = store_findings(db, run, found, pseudonymise)
        finally:
            db.close()
        out["stored"] = {"events": events, "campaigns": campaigns}
        notes.append(f"Stored {events:,} events and {campaigns} campaigns in the database.")
    out["notes"] = notes
    return out


def _assess(
    found: Any, files: list[str], subjects_path: str, residence_field: str, policy: Any
) -> dict[str, Any]:
    from scrapeshield.clock import SystemClock
    from scrapeshield.legal.breach import DataMap, Incident, assess
    from scrapeshield.legal.rules import Rules
    from scrapeshield.legal.subjects import Subjects

    contained = found.contained()
    clients = contained["client"].to_list()
    taken = {r: found.routes_of.get(r, frozenset()) for r in found.taken(clients)}
    start = float(contained["first_seen"].min()) if contained.height else 0.0
    end = float(contained["last_seen"].max()) if contained.height else 0.0
    incident = Incident(
        "replay",
        f"Scraping found by replaying {', '.join(files)[:120]}",
        start,
        end,
        taken,
        source=f"replay {', '.join(files)[:150]}",
        notes=(f"{len(clients)} contained clients; records served per the access log",),
    )
    subjects = Subjects.load(subjects_path, residence_field)
    result = assess(
        incident, subjects, Rules.load(), SystemClock().now(), data_map=DataMap.from_policy(policy)
    )
    return result.to_dict()
