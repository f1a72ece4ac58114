"""``scrapeshield replay FILE…``: forensics on access logs (C9)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import click

from scrapeshield import cli as root
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
    "--store",
    is_flag=True,
    help="Store events and campaigns in the database (the data dir's, or --db; --db alone stores too).",
)
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
@root._store_options
def replay(as_json: bool, **options: Any) -> None:
    """Replay access logs through the detection engine on their own timestamps.

    Finds the clients the shield would have contained, groups them into campaigns and
    sizes what was taken (distinct personal records served, per the policy's route map).
    Bad lines are reported by number and skipped.
    """
    try:
        report = _run(Options(**options))
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


# A replay keeps its counters in its own memory, whatever a shared store says: the --state
# option the other commands take would be accepted and ignored, so replay does not take it.
replay.params = [p for p in replay.params if p.name != "state"]


@dataclass(frozen=True)
class Options:
    """The command's options but ``--json`` (names as click passes them)."""

    files: tuple[str, ...]
    log_format: str
    time_format: str | None
    json_fields: tuple[str, ...]
    exact: bool
    show_ips: bool
    store: bool
    subjects_path: str | None
    residence_field: str
    policy_path: str | None
    data_dir: str | None
    db_url: str | None


def _run(o: Options) -> dict[str, Any]:
    from scrapeshield.events import Pseudonymiser
    from scrapeshield.forensics import formats, report
    from scrapeshield.forensics.findings import find
    from scrapeshield.forensics.replay import replay as run_replay
    from scrapeshield.policy.loader import load_policy

    fields: dict[str, str] = {}
    for item in o.json_fields:
        name, sep, key = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--json-field takes FIELD=KEY, not {item!r}")
        fields[name] = key
    fmt = (
        None
        if o.log_format == "auto" and not fields
        else formats.resolve("json" if o.log_format == "auto" else o.log_format, o.time_format, fields)
    )
    policy = load_policy(o.policy_path)
    settings = root._settings(o.data_dir, o.db_url, "memory", o.policy_path)
    pseudonymise = Pseudonymiser(settings.derived_key("pseudonym"))
    run = run_replay(o.files, policy, fmt, exact=o.exact)
    found = find(run.decided, policy, pseudonymise)
    out = report.build(run, found, pseudonymise, show_ips=o.show_ips)
    notes: list[str] = []
    if o.subjects_path:
        out["assessment"] = _assess(found, run.files, o.subjects_path, o.residence_field, policy)
        a = out["assessment"]
        notes.append(
            f"Breach assessment: {a['subjects']} data subjects, "
            f"{len(a['jurisdictions'])} jurisdiction(s); see --json for the tests and deadlines"
        )
    if o.db_url or o.store:
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
